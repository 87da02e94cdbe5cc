"""Where each argument value of a proposed call came from: value-level provenance.

An injected instruction does harm when a value a third party wrote (an address, an IBAN,
a URL, a file id, an amount) reaches an argument that matters. So for every argument leaf
of a proposed call the engine finds its *origin*, the first place the run saw it:

- `user`: the run's input (the user's request);
- `instructions`: the agent's instructions;
- `trusted`: the output of a tool declared trusted (which tool, which call);
- `untrusted`: the output of a tool declared `trusted=False` (which tool, which call);
- `none`: nowhere the run read (the model made it up, or computed it).

How values are compared. Texts are read as decoded values (a tool's result is walked leaf
by leaf, never as JSON text, so a value at the start of a line or inside a multi-line
string is seen), lower-cased, and cut into *keys*: e-mail addresses (`e:`), URLs (`u:`,
without `www.` and a trailing slash) and their hosts and bare domains (`h:`), IBANs (`i:`,
without spaces), digit runs of six or more digits with separators removed (`d:`: phone
and account numbers, "+1 (555) 010-7788" is `d:15550107788`), numbers (`n:`, thousands
separators and currency signs ignored: "$1,500.00" is `n:1500`) and words (`w:`, whole
tokens, and each alphanumeric part of one, so `13` is found in "file 13" and in
"files/13" but not in "130"). An argument leaf is cut the same way: a single token is
looked up by its most specific key (an address by `e:`, a URL by `u:` then its host);
a composed string ("Send to mark@evil.example please") by the entities inside it, its
origin the least trusted of theirs; other phrases are searched as whole words in the texts.

Why a value's origin is its *first* source: tools echo. A created event or file holds
the attacker's address the model put there, and a search repeats its query; an echo must
not make an untrusted value trusted. Precisely: a key a trusted tool returns that was not
in that call's own arguments counts as supplied by that tool (a contacts lookup vouches
for the address it finds); a key it returns that was in its arguments is an echo and
keeps the origin it had (or, if new, gets the tool's). Untrusted output never vouches.

Cost: tool results are folded into the index as they arrive (each once, on the first
decision that needs it, `ProvenanceIndex.catch_up`), so a decision costs a few dict
lookups per argument, not a rescan of the run's texts; only a multi-word phrase with no
entity in it is searched in the texts.

Limits (documented in docs/governance.md): a value the model transforms (an address it
spells differently, an amount it converts) has origin `none`; a trusted tool that
returns third-party text (a shared calendar listing an attacker's invitation) must be
declared `trusted=False`, or its output vouches for what it returns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from bosun.spec.vocab import Origin

#: How much each origin is trusted (lower is better); an argument has its worst leaf's.
RANK: dict[str, int] = {
    Origin.USER: 0,
    Origin.INSTRUCTIONS: 0,
    Origin.TRUSTED: 1,
    Origin.NONE: 2,
    Origin.UNTRUSTED: 3,
}
MAX_PHRASE = 2000  # longer free text is not searched for (its entities still are)

_EMAIL = re.compile(r"[a-z0-9][a-z0-9._%+\-]*@[a-z0-9\-]+(?:\.[a-z0-9\-]+)+")
_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>\"'`(){}\[\]|\\^]+")
_DOMAIN = re.compile(
    r"(?<![\w@.\-/])(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+[a-z]{2,24}(?![\w\-@])(?!\.\w)"
)
_IBAN = re.compile(r"\b[a-z]{2}\d{2}(?:[ ]?[a-z0-9]{4}){2,7}(?:[ ]?[a-z0-9]{1,3})?\b")
_DIGITS = re.compile(r"\+?\d[\d \t().\-/]{4,}\d")
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\d])")
_TOKEN = re.compile(r"[^\s\"'`<>()\[\]{};|]+")
_DOMAIN_FULL = re.compile(r"(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+[a-z]{2,24}")
_NUMBER_FULL = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_NUMERIC_START = frozenset("$€£+-0123456789")
_PART = re.compile(r"[a-z0-9]+")
_EDGE = ".,:!?*#=~"
_SPACE = re.compile(r"\s")
_HAS_DIGIT = re.compile(r"\d")
MIN_DIGITS = 6


@dataclass(frozen=True, slots=True)
class Source:
    """One place the run read text: its origin, and for a tool's output which tool and call
    (`n` counts the run's tool results from 1, as people say "call 3")."""

    origin: str
    tool: str | None = None
    call_id: str | None = None
    n: int = 0

    def record(self) -> dict[str, Any]:
        """The compact form journaled with a decision."""
        out: dict[str, Any] = {"origin": str(self.origin)}
        if self.tool is not None:
            out.update(tool=self.tool, call=self.call_id, n=self.n)
        return out

    def says(self) -> str:
        """ "first seen in `read_email` call 3" and the like, for approvals."""
        if self.origin == Origin.UNTRUSTED or self.origin == Origin.TRUSTED:
            trust = "" if self.origin == Origin.UNTRUSTED else "trusted "
            return f"first seen in {trust}`{self.tool}` call {self.n} ({self.call_id})"
        if self.origin == Origin.NONE:
            return "seen nowhere the run read (the model wrote it)"
        return f"from the {'user' if self.origin == Origin.USER else 'instructions'}"


USER = Source(Origin.USER)
INSTRUCTIONS = Source(Origin.INSTRUCTIONS)
NOWHERE = Source(Origin.NONE)


def _url_keys(url: str) -> tuple[str, str]:
    url = url.rstrip(_EDGE + "/,")
    rest = url.partition("://")[2]
    host, slash, path = rest.partition("/")
    host = host.rsplit("@", 1)[-1].split(":", 1)[0]
    host = host[4:] if host.startswith("www.") else host
    full = f"{host}{slash}{path}".rstrip("/")
    return "u:" + full, "h:" + host


def _number_of(token: str) -> float | None:
    try:
        return float(token.lstrip("$€£").replace(",", ""))
    except ValueError:
        return None


def _number_key(value: float) -> str:
    return "n:" + (str(int(value)) if float(value).is_integer() else repr(float(value)))


def text_keys(text: str) -> set[str]:
    """Every key of one (decoded) text; see the module docstring. One pass over its
    tokens; only IBANs and phone numbers, which may hold spaces, need the whole text."""
    lower = text.lower()
    keys: set[str] = set()
    add = keys.add
    for token in _TOKEN.findall(lower):
        token = token.strip(_EDGE)
        if not token:
            continue
        add("w:" + token)
        for part in _PART.findall(token):
            add("w:" + part)
            if part.isdigit():
                add("n:" + str(int(part)))
        if "@" in token:
            found = _EMAIL.search(token)
            if found:
                add("e:" + found.group().rstrip(".-"))
        if "://" in token:
            found = _URL.search(token)
            if found:
                keys.update(_url_keys(found.group()))
        elif "." in token and _DOMAIN_FULL.fullmatch(token):
            add("h:" + (token[4:] if token.startswith("www.") else token))
        if token[0] in _NUMERIC_START:
            number = _NUMBER_FULL.fullmatch(token.lstrip("$€£+"))
            if number:
                add(_number_key(float(number.group().replace(",", ""))))
    if _HAS_DIGIT.search(lower) is not None:
        for m in _IBAN.findall(lower):
            add("i:" + m.replace(" ", ""))
        for m in _DIGITS.findall(lower):
            digits = _digit_run(m)
            if digits:
                add("d:" + digits)
    return keys


def _entities(lower: str) -> list[tuple[str, ...]]:
    """The entities inside a composed string, each as its keys in order of preference."""
    found: list[tuple[str, ...]] = []
    if "@" in lower:
        found += [("e:" + m.rstrip(".-"),) for m in _EMAIL.findall(lower)]
    if "://" in lower:
        found += [_url_keys(m) for m in _URL.findall(lower)]
    if _HAS_DIGIT.search(lower) is None:
        return found
    found += [("i:" + m.replace(" ", ""),) for m in _IBAN.findall(lower)]
    for m in _DIGITS.findall(lower):
        digits = _digit_run(m)
        if digits and not any(k[0].endswith(digits) for k in found):
            found.append(("d:" + digits,))
    return found


def _digit_run(match: str) -> str | None:
    """A phone or account number's digits; None for a decimal number ("1,500.00") and
    runs of fewer than `MIN_DIGITS` digits."""
    if ("." in match or "," in match) and _NUMBER.fullmatch(match.strip()):
        return None
    digits = "".join(c for c in match if c.isdigit())
    return digits if len(digits) >= MIN_DIGITS else None


def _token_keys(token: str) -> tuple[str, ...]:
    """The keys one token is looked up by, most specific first."""
    if _EMAIL.fullmatch(token):
        return ("e:" + token,)
    if _URL.fullmatch(token):
        return _url_keys(token)
    keys = []
    compact = token.replace(" ", "")
    if _IBAN.fullmatch(compact):
        keys.append("i:" + compact)
    keys.append("w:" + token.strip(_EDGE))
    digits = "".join(c for c in token if c.isdigit())
    if len(digits) >= MIN_DIGITS and not any(c.isalpha() for c in token):
        keys.append("d:" + digits)
    number = _number_of(token)
    if number is not None:
        keys.append(_number_key(number))
    if _DOMAIN.fullmatch(token):
        keys.append("h:" + (token[4:] if token.startswith("www.") else token))
    return tuple(keys)


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, leaf) pairs of a value: `to`, `to[1]`, `payee.iban`."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from leaves(item, f"{path}[{i}]")
    else:
        yield path, value


def _strings(value: Any) -> Iterator[str]:
    """The texts of a tool result, decoded: strings (JSON inside a string is read too),
    and numbers as text; keys of mappings count (a result keyed by address)."""
    if isinstance(value, str):
        stripped = value.lstrip()
        if stripped[:1] in ("{", "[") and len(stripped) < 1_000_000:
            try:
                inner = orjson.loads(value)
            except orjson.JSONDecodeError:
                inner = None
            if isinstance(inner, dict | list):
                yield from _strings(inner)
                return
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                yield key
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)


class ProvenanceIndex:
    """A run's keys and where each was first seen, folded as the run reads (see above).

    `RunState` feeds it (`user`, `tool_result`); `instructions` is set by the first
    decision (the agent is not in the journal's events); `catch_up` indexes what arrived
    since the last decision.
    """

    __slots__ = (
        "_calls",
        "_first",
        "_instructions",
        "_pending",
        "_pending_user",
        "_source_args",
        "_source_keys",
        "_texts",
        "_untrusted",
        "_user",
        "_vouched",
        "delegations",
        "instructions_text",
        "n",
        "referenced",
        "request",
    )

    def __init__(self) -> None:
        self._user: set[str] = set()
        self._vouched: dict[str, Source] = {}  # keys an instruction or trusted tool supplied
        self._first: dict[str, Source] = {}  # the first tool output that held each other key
        self._untrusted: dict[str, Source] = {}  # the first untrusted output that held each key
        # Untrusted calls the user's request pointed at by an argument it supplied (a URL, a
        # file name): what they returned is what the user asked to act on.
        self.referenced: set[str] = set()
        self._source_keys: dict[str, frozenset[str]] = {}  # untrusted call -> its keys
        self._source_args: dict[str, str] = {}  # untrusted call -> its arguments, lowered
        self._texts: list[tuple[str, Source]] = []  # lowered texts, for phrases
        self._pending: list[tuple[Any, bool, str, str, int, str]] = []
        self._pending_user: list[str] = []
        self._instructions: frozenset[str] = frozenset()
        self.instructions_text: str | None = None
        # Every finished call's tool and arguments (JSON text), in order: what a delegated
        # sink already took (rebuilt from the journal on resume, like everything here).
        self._calls: list[tuple[str, str]] = []
        # (sink tool, argument) -> the values delegation let through in this process, for
        # calls decided but not finished yet (parallel calls of one step).
        self.delegations: dict[tuple[str, str], set[str]] = {}
        self.n = 0
        self.request = ""  # the user's request, as delegation reads it

    # -- folding ---------------------------------------------------------------

    def user(self, text: str) -> None:
        """The user's request (the run's input; a handoff's user messages too)."""
        self.request = f"{self.request}\n{text}" if self.request else text
        self._pending_user.append(text)

    def instructions(self, text: str) -> None:
        """The agent's instructions (trusted text); cheap when they are the same again."""
        if text == self.instructions_text:
            return
        self._texts = [(t, s) for t, s in self._texts if s is not INSTRUCTIONS]
        self.instructions_text = text
        self._instructions = frozenset(text_keys(text))
        self._texts.insert(0, (text.lower(), INSTRUCTIONS))

    def tool_result(self, tool: str, call_id: str, result: Any, trusted: bool, args: str) -> None:
        """Remember a result; it is indexed by the next `catch_up` (cheap when unused: this
        runs for every result of every run, most of which no rule ever asks about)."""
        self.n += 1
        self._pending.append((result, trusted, tool, call_id, self.n, args))
        self._calls.append((tool, args))

    def catch_up(self) -> None:
        for text in self._pending_user:
            self._user |= text_keys(text)
            self._texts.insert(0, (text.lower(), USER))
        self._pending_user.clear()
        pending, self._pending = self._pending, []
        for result, trusted, tool, call_id, n, args in pending:
            origin = Origin.TRUSTED if trusted else Origin.UNTRUSTED
            source = Source(origin, tool, call_id, n)
            keys: set[str] = set()
            for text in _strings(result):
                keys |= text_keys(text)
                if len(text) <= 100_000:
                    self._texts.append((text.lower(), source))
            if source.origin == Origin.TRUSTED:
                echoed = _arg_keys(args)
                for key in keys:
                    if key in echoed:
                        self._first.setdefault(key, source)
                    else:
                        self._vouched.setdefault(key, source)
            else:
                asked = _arg_keys(args)  # reviews of X name X: not a sighting of X
                for key in keys:
                    self._first.setdefault(key, source)
                    if key not in asked:
                        self._untrusted.setdefault(key, source)
                self._source_keys[source.call_id or ""] = frozenset(keys)
                self._source_args[source.call_id or ""] = args.lower()
                if any(_specific(k) and k in self._user for k in asked):
                    self.referenced.add(source.call_id or "")

    # -- looking up ------------------------------------------------------------

    def source_of_key(self, key: str) -> Source | None:
        if key in self._user:
            return USER
        if key in self._instructions:
            return INSTRUCTIONS
        return self._vouched.get(key) or self._first.get(key)

    def untrusted_sighting(self, value: Any) -> Source | None:
        """The first untrusted output that held this single value, even when trusted data
        (a listing) vouches for it too."""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            return None
        text = str(value).strip().lower()
        if not text:
            return None
        if _SPACE.search(text) is not None:  # a name: searched in untrusted texts as words
            for lowered, source in self._texts:
                if (
                    source.origin == Origin.UNTRUSTED
                    and _contains_words(lowered, text)
                    and text not in self._source_args.get(source.call_id or "", "")
                ):
                    return source
            return None
        for key in _token_keys(text):
            if key in self._untrusted:
                return self._untrusted[key]
        return None

    def listed(self, value: Any) -> bool:
        """Whether a trusted tool's output holds this single value (a hotel listing names
        the hotel): it exists in the user's own data, whoever else named it."""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            return False
        text = str(value).strip().lower()
        if not text:
            return False
        if _SPACE.search(text) is not None:
            return any(
                source.origin == Origin.TRUSTED and _contains_words(lowered, text)
                for lowered, source in self._texts
            )
        return any(
            (found := self._vouched.get(key)) is not None and found.origin == Origin.TRUSTED
            for key in _token_keys(text)
        )

    def user_gave(self, value: Any) -> bool:
        """Whether the user's request holds an entity of this value's kind (an e-mail
        address, an IBAN, a URL, a phone number): then a value of that kind is the user's
        to give, and an untrusted one is never delegated."""
        if not isinstance(value, str):
            return False
        text = value.strip().lower()
        keys = _token_keys(text) if _SPACE.search(text) is None else ()
        kind = next((k[:2] for k in keys if k[:2] in ("e:", "i:", "u:", "d:")), None)
        return kind is not None and any(k.startswith(kind) for k in self._user)

    def taken(self, tool: str, arg: str) -> set[str]:
        """The untrusted values earlier calls of `tool` used for `arg` (lower-cased leaves
        an allowed or approved call ran with, and those delegation passed this step)."""
        out = set(self.delegations.get((tool, arg), ()))
        for name, args in self._calls:
            if name != tool or not args:
                continue
            try:
                value = orjson.loads(args).get(arg)
            except (orjson.JSONDecodeError, AttributeError):
                continue
            for _, leaf in leaves(value):
                found = self.source_of(leaf)
                if found is not None and found.origin == Origin.UNTRUSTED:
                    out.add(str(leaf).strip().lower())
        return out

    def records_of_call(self, call_id: str, value: Any) -> list[set[str]]:
        """The keys of each record (a line of a text, see `_rows`) of an untrusted call's output that
        holds this value: which row of a listing the value was taken from."""
        needle = str(value).strip().lower()
        keys = _token_keys(needle) if _SPACE.search(needle) is None else ()
        out = []
        for text, source in self._texts:
            if source.call_id != call_id or source.origin != Origin.UNTRUSTED:
                continue
            for line in _rows(text):
                if needle in line or needle.replace(" ", "") in line.replace(" ", ""):
                    line_keys = text_keys(line)
                    if not keys or any(k in line_keys for k in keys):
                        out.append(line_keys)
        return out

    def keys_of_call(self, call_id: str) -> frozenset[str]:
        """The keys an untrusted call's output held."""
        return self._source_keys.get(call_id, frozenset())

    def kind_of(self, value: Any) -> str | None:
        """The entity kind of a single value: `e:` (address), `i:` (IBAN), `d:` (phone or
        account number), `u:` (URL); None for anything else."""
        if not isinstance(value, str):
            return None
        text = value.strip().lower()
        if _SPACE.search(text) is not None and not _IBAN.fullmatch(text):
            return None
        keys = _token_keys(text)
        return next((k[:2] for k in keys if k[:2] in ("e:", "i:", "u:", "d:")), None)

    def embedded(self, value: Any) -> Source | None:
        """The least trusted origin of the addresses and URLs written inside a longer text
        (a post that carries a link): None when it holds none."""
        if not isinstance(value, str) or ("@" not in value and "://" not in value):
            return None
        lower = value.lower()
        keys = [("e:" + m.rstrip(".-"),) for m in _EMAIL.findall(lower)]
        keys += [_url_keys(m) for m in _URL.findall(lower)]
        if not keys:
            return None
        return max((self._first_of(k) for k in keys), key=lambda s: RANK[s.origin])

    def _first_of(self, keys: Iterable[str]) -> Source:
        for key in keys:
            found = self.source_of_key(key)
            if found is not None:
                return found
        return NOWHERE

    def source_of(self, value: Any, amount: bool = False) -> Source | None:
        """Where one leaf came from (None for booleans, None and empty strings)."""
        if value is None or isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            if value != value or value in (float("inf"), float("-inf")):
                return None
            return self._first_of((_number_key(value), "w:" + str(value)))
        text = str(value).strip().lower()
        if not text:
            return None
        if _SPACE.search(text) is None or _IBAN.fullmatch(text):
            return self._first_of(_token_keys(text))
        entities = _entities(text)
        if amount:  # an amount's number is what moves, whatever else its text holds
            numbers = [(_number_key(float(m.replace(",", ""))),) for m in _NUMBER.findall(text)]
            entities = numbers or entities
        if entities:
            return max((self._first_of(keys) for keys in entities), key=lambda s: RANK[s.origin])
        if len(text) > MAX_PHRASE:
            return NOWHERE
        return self._phrase(text)

    def _phrase(self, phrase: str) -> Source:
        best: Source | None = None
        for text, source in self._texts:
            if _contains_words(text, phrase) and (best is None or _better(source, best)):
                best = source
                if RANK[best.origin] == 0:
                    break
        return best or NOWHERE


def _rows(text: str) -> list[str]:
    """A text's records: its lines, an indented line continuing the one before (a listing's
    entry and its description)."""
    rows: list[str] = []
    for line in text.splitlines():
        if rows and line[:1] in (" ", "\t") and line.strip():
            rows[-1] += "\n" + line
        else:
            rows.append(line)
    return rows


def _better(a: Source, b: Source) -> bool:
    """A phrase's origin: the user's or a trusted tool's over an untrusted one's; else the
    first seen (texts are kept in the order they were read)."""
    return RANK[a.origin] < RANK[b.origin] and a.origin != Origin.NONE


def _contains_words(haystack: str, needle: str) -> bool:
    start = haystack.find(needle)
    while start != -1:
        end = start + len(needle)
        before = haystack[start - 1] if start else " "
        after = haystack[end] if end < len(haystack) else " "
        if not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_"):
            return True
        start = haystack.find(needle, start + 1)
    return False


def _specific(key: str) -> bool:
    """A key that names one thing (an address, a URL, an IBAN, a number, a file name), not
    a common word: pointing at a call by it is deliberate."""
    if key[:2] in ("e:", "u:", "i:", "d:"):
        return True
    return key.startswith("w:") and any(c in key[2:] for c in "./-_@0123456789")


def _arg_keys(arguments: str) -> set[str]:
    """The keys of a call's own arguments (JSON text), decoded: what its output may echo."""
    try:
        value = orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        return text_keys(arguments)
    keys: set[str] = set()
    for text in _strings(value):
        keys |= text_keys(text)
    return keys


__all__ = [
    "INSTRUCTIONS",
    "NOWHERE",
    "RANK",
    "USER",
    "ProvenanceIndex",
    "Source",
    "leaves",
    "text_keys",
]
