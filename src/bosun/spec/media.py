"""Media and long results as plain data: what a tool returns or a run is given, kept by
reference (`bosun.store.artifacts` holds the bytes; the journal holds a reference).

- `Media(data, mime, name)`: an image, audio clip or file. A Python tool may return one
  (or a list or dict holding some); `Runtime.run(..., attachments=[...])` takes them.
  The engine stores the bytes and journals a *reference* in their place:
  `{"type": "image", "artifact": "sha256:...", "mime": "image/png", "bytes": 1234,
  "name": "frame.png"}` (`type` is image, audio or file).
- `Excerpt(shown, full, mime)`: a result too long for the model. The model (and the
  journal's `ToolFinished.result`) gets `shown`; the whole result is an artifact that
  `ToolFinished.full` references (`bosun show RUN --call ID --full` prints it).
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Media:
    data: bytes
    mime: str
    name: str | None = None

    @classmethod
    def from_file(cls, path: str | Path) -> Media:
        """A file as media, its MIME type guessed from its name (octet-stream if unknown)."""
        path = Path(path)
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return cls(path.read_bytes(), mime, path.name)


@dataclass(frozen=True, slots=True)
class Excerpt:
    shown: Any
    full: bytes
    mime: str = "text/plain"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def reference(media: Media) -> dict[str, Any]:
    """The journal's form of `media` (its bytes are stored apart under the digest)."""
    kind = media.mime.partition("/")[0]
    ref: dict[str, Any] = {
        "type": kind if kind in ("image", "audio") else "file",  # a content part as it is
        "artifact": digest_of(media.data),
        "mime": media.mime,
        "bytes": len(media.data),
    }
    if media.name:
        ref["name"] = media.name
    return ref


def is_reference(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("artifact"), str)
        and value["artifact"].startswith("sha256:")
    )


def references(value: Any) -> list[dict[str, Any]]:
    """Every artifact reference inside a JSON-ready value, in order."""
    found: list[dict[str, Any]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if is_reference(item):
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list | tuple):
            stack.extend(reversed(item))
    return found


def has_media(value: Any) -> bool:
    """Whether a tool's raw result holds `Media` or is an `Excerpt` (cheap for plain data:
    it runs on every tool result, so scalars cost one type check)."""
    kind = type(value)
    if kind in _SCALARS:
        return False
    if isinstance(value, _HOLDERS):
        return True
    if isinstance(value, dict):
        return any(has_media(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_media(v) for v in value)
    return False


_SCALARS = frozenset({str, int, float, bool, type(None), bytes})
_HOLDERS = (Media, Excerpt)


__all__ = ["Excerpt", "Media", "digest_of", "has_media", "is_reference", "reference", "references"]
