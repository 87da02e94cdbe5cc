"""Media by reference on the engine's side: bytes in, references journaled; references
in, content parts for the model, built at call time from the artifact store.

- `keep`: a tool's raw result may hold `Media` (an image an MCP server returned, a frame a
  Python tool produced) or be an `Excerpt` (a result too long for the model). The bytes
  go to the artifact store (`bosun.store.artifacts`), scoped to the run's tenant and
  recorded as used by the run; the journal gets references (`bosun.spec.media`), and an
  `Excerpt`'s whole result becomes `ToolFinished.full`.
- `expand`: the run's messages hold references (attachments of its input, media in tool
  results); just before a model call they become OpenAI content parts: images as
  `image_url` with a `data:` URL, audio as `input_audio`, anything else a note naming the
  artifact. A tool message can carry only text on the chat-completions wire, so the media
  of tool results follow the tool messages as one user message. Nothing of this is
  journaled: the journal keeps the reference, the request carries the bytes.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from bosun.errors import BosunError
from bosun.spec.media import Excerpt, Media, is_reference, reference
from bosun.store.artifacts import ArtifactStore
from bosun.tools.execute import Keep

# Audio formats the chat-completions `input_audio` part names, by MIME subtype.
_AUDIO_FORMATS = {"wav": "wav", "x-wav": "wav", "wave": "wav", "mpeg": "mp3", "mp3": "mp3"}


async def store_media(store: ArtifactStore, tenant: str, media: Media, run_id: str | None) -> dict:
    """Store `media` for `tenant` (used by `run_id`); its journal reference."""
    await store.put_artifact(tenant, media.data, media.mime, run_id=run_id)
    return reference(media)


def attached(item: Media | str | os.PathLike[str]) -> Media:
    """An attachment as `Media`: as given, or read from a file (MIME type by its name)."""
    if isinstance(item, Media):
        return item
    try:
        return Media.from_file(item)
    except OSError as exc:
        raise BosunError(f"cannot attach {os.fspath(item)!r}: {exc.strerror or exc}") from None


def keeper(store: ArtifactStore, tenant: str, run_id: str) -> Keep:
    """`keep` bound to one run (what `execute_tool` calls on a result holding media)."""

    async def keep(value: Any) -> tuple[Any, dict[str, Any] | None]:
        full = None
        if isinstance(value, Excerpt):
            whole = Media(value.full, value.mime, "result")
            full = await store_media(store, tenant, whole, run_id)
            value = value.shown
        return await _replace(store, tenant, run_id, value), full

    return keep


async def _replace(store: ArtifactStore, tenant: str, run_id: str, value: Any) -> Any:
    if isinstance(value, Media):
        return await store_media(store, tenant, value, run_id)
    if isinstance(value, dict):
        return {k: await _replace(store, tenant, run_id, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [await _replace(store, tenant, run_id, v) for v in value]
    return value


async def expand(
    store: ArtifactStore, tenant: str, messages: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """`messages` with every reference as a content part (see the module docstring)."""
    out: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []  # media of the tool messages just passed
    for message in messages:
        if message.get("role") != "tool" and held:
            out.append(await _media_message(store, tenant, held))
            held = []
        media = message.get("media")
        content = message.get("content")
        if media is not None:
            message = {k: v for k, v in message.items() if k != "media"}
            held.extend(media)
        if isinstance(content, list) and message.get("role") != "tool":
            message = {**message, "content": [await _part(store, tenant, p) for p in content]}
        out.append(message)
    if held:
        out.append(await _media_message(store, tenant, held))
    return out


async def _media_message(
    store: ArtifactStore, tenant: str, refs: list[dict[str, Any]]
) -> dict[str, Any]:
    parts = [{"type": "text", "text": "Media returned by the tool calls above:"}]
    parts += [await _part(store, tenant, ref) for ref in refs]
    return {"role": "user", "content": parts}


async def _part(store: ArtifactStore, tenant: str, part: Any) -> dict[str, Any]:
    if not is_reference(part):
        return part
    digest, mime = part["artifact"], str(part.get("mime", ""))
    label = f"{part.get('name') or 'artifact'} ({mime}, {part.get('bytes', '?')} bytes, {digest})"
    kind, _, subtype = mime.partition("/")
    if kind not in ("image", "audio") or (kind == "audio" and subtype not in _AUDIO_FORMATS):
        return {"type": "text", "text": f"[attached: {label}]"}
    found = await store.artifact(tenant, digest)
    if found is None:
        return {"type": "text", "text": f"[{label} is no longer stored]"}
    encoded = base64.b64encode(found[1]).decode()
    if kind == "image":
        return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{encoded}"}}
    return {
        "type": "input_audio",
        "input_audio": {"data": encoded, "format": _AUDIO_FORMATS[subtype]},
    }


__all__ = ["attached", "expand", "keeper", "store_media"]
