"""SQL written once: the shared statements read the same on both dialects."""

from __future__ import annotations

from bosun.store import sql
from bosun.store.sql import pg


def test_pg_converts_placeholders_but_not_question_marks_inside_literals():
    assert pg("SELECT a FROM t WHERE b=? AND c='?' AND d LIKE 'x%' AND e=?") == (
        "SELECT a FROM t WHERE b=%s AND c='?' AND d LIKE 'x%%' AND e=%s"
    )


def test_every_shared_statement_has_as_many_psycopg_placeholders_as_sqlite_ones():
    statements = {k: v for k, v in vars(sql).items() if k.isupper() and isinstance(v, str)}
    assert len(statements) > 30
    for name, text in statements.items():
        assert pg(text).count("%s") == text.replace("'?'", "").count("?"), name


def test_filters_name_only_what_is_given():
    where, params = sql.run_filters(status="queued", agent=None, tenant="acme")
    assert (where, params) == (["r.status=?", "r.tenant=?"], ["queued", "acme"])
    assert sql.approval_filters(status=None, tenant=None, run_id=None) == ("1=1", [])
