"""Rebuild the layout files in this folder from the project's git history (run by hand,
from the repository root: `python tests/store/layouts/make_layouts.py`).

Each file is the layout an earlier Bosun created in an empty database, taken from that
release's own schema code: `sqlite_v<N>.sql` (N = its `PRAGMA user_version`, 1 had none)
and `postgres_<commit>.sql` for every release that changed the PostgreSQL statements.
Statements are separated by lines holding only `;;`.
"""

from __future__ import annotations

import ast
import re
import sqlite3
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).parent
GENESIS = "0" * 64

SQLITE = {  # user_version -> the commit whose `prepare` made that layout
    2: "4a5e6e8",
    3: "ec8f0d9",
    4: "063a9ab",
    5: "5a1b0f3",
    6: "08c8a71",
    7: "6c9b4a4",
}
POSTGRES = ["65d7d54", "dbc7610", "f087db5", "bf76ab1", "ec8f0d9", "5a1b0f3", "fc7894d",
            "08c8a71", "6c9b4a4"]  # fmt: skip
PG_FILES = ["postgres.py", "postgres_governance.py", "postgres_server.py", "postgres_observe.py"]
PG_LISTS = ["SCHEMA", "GOVERNANCE_SCHEMA", "SERVER_SCHEMA", "FINDINGS_SCHEMA"]


def show(commit: str, path: str) -> str | None:
    done = subprocess.run(
        ["git", "show", f"{commit}:src/bosun/store/{path}"], capture_output=True, text=True
    )
    return done.stdout if done.returncode == 0 else None


def dump(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
    ).fetchall()
    return [r[0] for r in rows]


def write(name: str, statements: list[str]) -> None:
    (HERE / name).write_text("\n;;\n".join(statements) + "\n")


def sqlite_layouts() -> None:
    # Layout 1 lived in sqlite.py itself, before `sqlite_schema.py`.
    source = show("4a5e6e8^", "sqlite.py") or ""
    script = re.search(r'SCHEMA = """(.*?)"""', source, re.S).group(1)
    conn = sqlite3.connect(":memory:")
    conn.executescript(script)
    write("sqlite_v1.sql", dump(conn))
    for version, commit in SQLITE.items():
        namespace: dict[str, object] = {}
        code = (show(commit, "sqlite_schema.py") or "").replace(
            "from bosun.journal.audit import GENESIS", f"GENESIS = {GENESIS!r}"
        )
        exec(compile(code, f"{commit}:sqlite_schema.py", "exec"), namespace)
        conn = sqlite3.connect(":memory:", isolation_level=None)
        namespace["prepare"](conn)  # type: ignore[operator]
        assert conn.execute("PRAGMA user_version").fetchone()[0] == version
        write(f"sqlite_v{version}.sql", dump(conn))


def pg_statements(commit: str) -> list[str]:
    out: list[str] = []
    for path in PG_FILES:
        source = show(commit, path)
        if source is None:
            continue
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") in PG_LISTS:
                value = eval(  # the list literal, f-strings filled in with the genesis hash
                    compile(ast.Expression(node.value), path, "eval"), {"GENESIS": GENESIS}
                )
                out.extend([value] if isinstance(value, str) else value)
    return out


def postgres_layouts() -> None:
    for n, commit in enumerate(POSTGRES, start=1):
        write(f"postgres_{n}_{commit}.sql", pg_statements(commit))


if __name__ == "__main__":
    started = time.time()
    sqlite_layouts()
    postgres_layouts()
    print(f"layouts written in {time.time() - started:.1f}s")
