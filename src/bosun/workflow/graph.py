"""A workflow run drawn as its graph: every task of the document, the path the run took,
where it waits. Server-rendered SVG with presentation attributes only (no inline style or
script), so it shows under the console's CSP; the console puts it on a run's page.

Layout: tasks top to bottom in document order, a composite's tasks (`do`, `try`, `catch`,
`for`, fork branches) indented inside it; an arrow joins each task to the next, and a
`then:` jump is written on the task it leaves.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from bosun.workflow.runs import WorkflowView

ROW, INDENT, WIDTH = 34, 22, 460
KINDS = ("call", "set", "switch", "for", "fork", "try", "do", "raise", "wait", "emit", "listen")
COLOURS = {  # fill, stroke
    "taken": ("#e6f4ea", "#1e8e3e"),
    "waiting": ("#fef7e0", "#f29900"),
    "failed": ("#fce8e6", "#d93025"),
    "idle": ("#ffffff", "#bdc1c6"),
}


@dataclass
class Node:
    pointer: str
    name: str
    kind: str
    depth: int
    label: str  # what it does, briefly
    then: str | None


def nodes(document: dict[str, Any]) -> list[Node]:
    out: list[Node] = []

    def walk(items: list[dict[str, Any]], pointer: str, depth: int) -> None:
        for i, item in enumerate(items):
            name, task = next(iter(item.items()))
            here = f"{pointer}/{i}/{name}"
            kind = next((k for k in KINDS if k in task), "task")
            label = kind
            if kind == "call":
                call = task["call"]
                label = f"call {call}" + (
                    f" {task['with'].get('agent')}" if call == "agent" and task.get("with") else ""
                )
            elif kind == "switch":
                cases = [next(iter(c)) for c in task["switch"]]
                label = "switch: " + ", ".join(cases)
            then = task.get("then")
            out.append(Node(here, name, kind, depth, label, then))
            if kind in ("do", "for") and isinstance(task.get("do"), list):
                walk(task["do"], here + "/do", depth + 1)
            if kind == "try":
                walk(task["try"], here + "/try", depth + 1)
                catch = task.get("catch") or {}
                if isinstance(catch.get("do"), list):
                    walk(catch["do"], here + "/catch/do", depth + 1)
            if kind == "fork":
                walk(task["fork"].get("branches", []), here + "/fork/branches", depth + 1)

    walk(document.get("do", []), "/do", 0)
    return out


def svg(document: dict[str, Any], seen: WorkflowView) -> str:
    drawn = nodes(document)
    taken = set(seen.path)
    waiting = set(seen.waiting)
    failed = (seen.error or {}).get("instance")
    height = ROW * len(drawn) + 20
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="workflow-graph" width="{WIDTH + 200}"'
        f' height="{height}" viewBox="0 0 {WIDTH + 200} {height}" role="img"'
        ' aria-label="the workflow\'s tasks and the path this run took">'
    ]
    for i, node in enumerate(drawn):
        y = 10 + i * ROW
        x = 10 + node.depth * INDENT
        state = (
            "failed"
            if node.pointer == failed
            else "waiting"
            if node.pointer in waiting
            else "taken"
            if node.pointer in taken
            else "idle"
        )
        fill, stroke = COLOURS[state]
        if i + 1 < len(drawn):
            parts.append(
                f'<line x1="{x + 8}" y1="{y + 24}" x2="{x + 8}" y2="{y + ROW}"'
                f' stroke="{"#1e8e3e" if state == "taken" else "#dadce0"}" stroke-width="2"/>'
            )
        parts.append(
            f'<g data-pointer="{escape(node.pointer)}" data-state="{state}">'
            f"<title>{escape(node.pointer)}: {state}</title>"
            f'<rect x="{x}" y="{y}" width="{WIDTH - node.depth * INDENT}" height="24" rx="5"'
            f' fill="{fill}" stroke="{stroke}" stroke-width="{2 if state != "idle" else 1}"/>'
            f'<text x="{x + 8}" y="{y + 16}" font-family="sans-serif" font-size="12"'
            f' fill="#202124"><tspan font-weight="bold">{escape(node.name)}</tspan>'
            f"  {escape(node.label)}</text>"
        )
        extra = []
        if state == "waiting":
            extra.append("waits here")
        if node.then:
            extra.append(f"then: {node.then}")
        if extra:
            parts.append(
                f'<text x="{WIDTH + 16}" y="{y + 16}" font-family="sans-serif" font-size="11"'
                f' fill="{stroke if state != "idle" else "#5f6368"}">'
                f"{escape(' · '.join(extra))}</text>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
