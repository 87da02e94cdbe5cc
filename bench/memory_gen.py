"""The memory benchmark's data: multi-session conversations whose facts are asked about
later, some superseded, some contradicted by a stale export, some old. Fixed seed, so every
run of `bench/memory.py` asks the same questions of the same facts.

    python bench/memory_gen.py --users 200 > /tmp/memory.json   # to look at it

Each user has sessions; in them they state facts (city, employer, pet, drink, phone, order
status), each with the time it was said. Later sessions update some (a move, a new job:
the same key from the same source, so the old value is superseded), and an old CSV export
(source `email_export`, not the declared source) contradicts some others. Questions
paraphrase the fact ("Which city is X based in these days?" for "X lives in Paris"), so
lexical search alone misses some and vectors help.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass

SEED = 17
DAY = 86_400.0
NOW = 1_800_000_000.0  # a fixed "now" (2027-01-15), so ages never depend on the clock

CITIES = [
    "Paris",
    "Lyon",
    "Berlin",
    "Munich",
    "Madrid",
    "Lisbon",
    "Porto",
    "Vienna",
    "Prague",
    "Oslo",
    "Bergen",
    "Turin",
]
COMPANIES = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
]
PETS = [
    "Rex",
    "Luna",
    "Milo",
    "Bella",
    "Max",
    "Nala",
    "Otis",
    "Coco",
    "Pixel",
    "Biscuit",
    "Mochi",
    "Ziggy",
]
DRINKS = [
    "green tea",
    "espresso",
    "oat latte",
    "sparkling water",
    "rooibos",
    "mango lassi",
    "flat white",
    "kombucha",
    "hot chocolate",
    "chai",
]
STATUSES = ["shipped", "delivered", "pending", "returned", "cancelled", "on hold"]

# attribute: (values, how the user says it, how a question asks it, source)
ATTRIBUTES = {
    "city": (CITIES, "{name} lives in {v}", "Which city is {name} based in these days?", "crm"),
    "employer": (COMPANIES, "{name} works at {v}", "Who is {name}'s current employer?", "crm"),
    "pet": (PETS, "{name}'s dog is called {v}", "What is the name of {name}'s dog?", "chat"),
    "drink": (
        DRINKS,
        "{name}'s favourite drink is {v}",
        "What beverage does {name} like best?",
        "chat",
    ),
    "phone": (None, "{name}'s phone number is {v}", "How can I reach {name} by telephone?", "crm"),
    "order": (STATUSES, "{name}'s order is {v}", "Where is {name}'s parcel at?", "orders"),
}
SOURCES_OF_TRUTH = {
    "user.city": "crm",
    "user.employer": "crm",
    "user.phone": "crm",
    "user.order": "orders",
}


@dataclass
class Said:
    user: str
    session: str
    attribute: str
    value: str  # the sentence as stored
    answer: str  # the value itself
    source: str
    observed_at: float


@dataclass
class Question:
    user: str
    attribute: str
    text: str
    current: str  # the sentence of the current value (what recall should return)
    superseded: bool  # the key had an earlier value
    contradicted: bool  # a stale export disagrees


def _names(rng: random.Random, n: int) -> list[str]:
    syllables = [
        "ka",
        "lo",
        "mi",
        "ra",
        "ten",
        "zu",
        "bel",
        "dor",
        "fin",
        "gra",
        "hul",
        "jo",
        "kes",
        "lin",
        "mor",
        "nel",
        "pav",
        "qui",
        "ros",
        "sal",
    ]
    names: set[str] = set()
    while len(names) < n:
        names.add("".join(rng.choice(syllables) for _ in range(3)).capitalize())
    return sorted(names)


def generate(users: int = 200, seed: int = SEED) -> tuple[list[Said], list[Question]]:
    rng = random.Random(seed)
    said: list[Said] = []
    questions: list[Question] = []
    for name in _names(rng, users):
        start = NOW - rng.uniform(300, 400) * DAY
        for attribute, (values, template, question, source) in ATTRIBUTES.items():

            def value_of(values: list[str] | None = values) -> str:
                if values is None:
                    return (
                        f"+33 6 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
                    )
                return rng.choice(values)

            first = value_of()
            when = start + rng.uniform(0, 30) * DAY
            said.append(
                Said(
                    name,
                    f"{name}-s1",
                    attribute,
                    template.format(name=name, v=first),
                    first,
                    source,
                    when,
                )
            )
            current, superseded, contradicted = first, False, False
            if rng.random() < 0.3:  # a later session updates it: the same key, the same source
                new = value_of()
                while new == first:
                    new = value_of()
                when2 = when + rng.uniform(60, 250) * DAY
                said.append(
                    Said(
                        name,
                        f"{name}-s2",
                        attribute,
                        template.format(name=name, v=new),
                        new,
                        source,
                        when2,
                    )
                )
                current, superseded = new, True
            kind = f"user.{attribute}"
            if kind in SOURCES_OF_TRUTH and rng.random() < 0.15:  # a stale export disagrees
                other = value_of()
                while other == current:
                    other = value_of()
                said.append(
                    Said(
                        name,
                        f"{name}-export",
                        attribute,
                        template.format(name=name, v=other),
                        other,
                        "email_export",
                        NOW - rng.uniform(1, 20) * DAY,
                    )
                )
                contradicted = True
            questions.append(
                Question(
                    name,
                    attribute,
                    question.format(name=name),
                    template.format(name=name, v=current),
                    superseded,
                    contradicted,
                )
            )
    said.sort(key=lambda s: s.observed_at)
    return said, questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    said, questions = generate(args.users, args.seed)
    print(
        json.dumps(
            {"said": [asdict(s) for s in said], "questions": [asdict(q) for q in questions]},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
