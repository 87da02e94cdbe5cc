"""The artifact store on both backends: stored once by content, read per tenant, and
collected by `gc` only when no retained run uses it."""

from __future__ import annotations

import time

from bosun.spec.media import digest_of
from bosun.store import open_store


async def test_artifact_is_stored_once_and_read_only_by_its_tenant(db_url):
    store = open_store(db_url)
    await store.open()
    try:
        data = b"\x89PNG frame" * 1000
        first = await store.put_artifact("acme", data, "image/png")
        again = await store.put_artifact("acme", data, "image/png")
        assert first == again == digest_of(data)
        assert await store.artifact("acme", first) == ("image/png", data)
        assert await store.artifact("other", first) is None  # another tenant: not found
        assert await store.artifact("acme", "sha256:../../etc/passwd") is None
    finally:
        await store.close()


async def test_gc_keeps_artifacts_of_retained_runs_and_frees_the_rest(db_url):
    store = open_store(db_url)
    await store.open()
    try:
        kept = await store.put_artifact("acme", b"used by a live run", "text/plain", run_id="run_x")
        # A run id that no run row has (its creation never committed): nothing holds it.
        orphan = await store.put_artifact("acme", b"orphan" * 100, "text/plain", run_id="run_y")
        loose = await store.put_artifact("acme", b"never used", "text/plain")
        later = time.time() + 1
        dry = await store.gc(later, dry_run=True)
        assert (dry.artifacts, dry.artifact_bytes, dry.dry_run) == (3, 18 + 600 + 10, True)
        assert await store.artifact("acme", orphan) is not None  # a dry run deletes nothing
        report = await store.gc(later)
        assert report.artifacts == 3
        for digest in (kept, orphan, loose):
            assert await store.artifact("acme", digest) is None
        # Recent artifacts are never collected, whatever uses them.
        fresh = await store.put_artifact("acme", b"fresh", "text/plain")
        assert (await store.gc(time.time() - 3600)).artifacts == 0
        assert await store.artifact("acme", fresh) is not None
    finally:
        await store.close()
