"""A small reader of the DSL conformance kit's feature files (Gherkin): scenarios, their
steps and each step's doc string. Enough for the CTK's files; no Gherkin dependency."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Step:
    text: str
    doc: str | None = None


@dataclass
class Scenario:
    feature: str
    name: str
    steps: list[Step] = field(default_factory=list)


def scenarios(path: str) -> list[Scenario]:
    feature = ""
    found: list[Scenario] = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("Feature:"):
            feature = line[8:].strip()
        elif line.startswith("Scenario:"):
            found.append(Scenario(feature, line[9:].strip()))
        elif line.startswith('"""') and found and found[-1].steps:
            indent = len(lines[i]) - len(lines[i].lstrip())
            body = []
            i += 1
            while lines[i].strip() != '"""':
                body.append(lines[i][indent:])
                i += 1
            found[-1].steps[-1].doc = "\n".join(body)
        elif found and re.match(r"(Given|And|When|Then|But)\b", line):
            found[-1].steps.append(Step(line.split(" ", 1)[1]))
        i += 1
    return found
