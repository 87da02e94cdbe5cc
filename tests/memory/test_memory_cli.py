"""`bosun sessions` and `bosun memory` on a real database file."""

from __future__ import annotations

import json

from bosun import Runtime
from bosun.cli import main


async def _seed(path: str) -> str:
    async with Runtime(path) as rt:
        written = await rt.memory.facts.remember(
            tenant="default",
            scope="user",
            scope_id="ada",
            subject="user:ada",
            attribute="email",
            value="ada@example.com",
            source="crm",
            trusted=True,
        )
        await rt.memory.facts.remember(
            tenant="default",
            scope="user",
            scope_id="ada",
            subject="user:ada",
            attribute="email",
            value="ada@new.example",
            source="crm",
            trusted=True,
        )
    return written.fact.id


def test_memory_search_show_and_forget(tmp_path, capsys):
    import asyncio

    db = str(tmp_path / "bosun.db")
    old = asyncio.run(_seed(db))
    assert main(["memory", "search", "ada email", "--db", db, "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [f["value"] for f in found] == ["ada@new.example"]
    assert main(["memory", "show", found[0]["id"], "--db", db, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [h["value"] for h in shown["history"]] == ["ada@example.com", "ada@new.example"]
    assert shown["history"][0]["id"] == old
    assert (
        main(["memory", "forget", found[0]["id"], "--db", db, "--by", "ops", "--reason", "gdpr"])
        == 0
    )
    capsys.readouterr()
    assert main(["memory", "search", "ada email", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["memory", "show", found[0]["id"], "--db", db]) == 2  # gone: a clear error
    assert "no memory" in capsys.readouterr().err


def test_sessions_list_and_show(tmp_path, capsys):
    db = str(tmp_path / "bosun.db")
    agent = tmp_path / "chat.yaml"
    agent.write_text("name: chat\nmodel:\n  provider: scripted\n  turns:\n    - content: noted\n")
    for text in ("one", "two"):
        assert main(["run", str(agent), "--input", text, "--session", "s", "--db", db]) == 0
    capsys.readouterr()
    assert main(["sessions", "--db", db, "--json"]) == 0
    assert [s["name"] for s in json.loads(capsys.readouterr().out)] == ["s"]
    assert main(["sessions", "show", "s", "--db", db, "--json"]) == 0
    assert [t["input"] for t in json.loads(capsys.readouterr().out)] == ["one", "two"]
    assert main(["sessions", "fork", "s", "--into", "t", "--db", db, "--by", "me"]) == 0
    assert main(["sessions", "clear", "s", "--db", db, "--by", "me"]) == 0
    capsys.readouterr()
    assert main(["sessions", "show", "s", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
