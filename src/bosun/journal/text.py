"""Text the journal can always store, whatever a model or a tool sent.

A model can answer with a NUL byte (PostgreSQL's text type refuses it) or a lone UTF-16
surrogate half (no UTF-8 encoder accepts it); either made an append fail, and a worker that
retried the run paid for the same model call again and again. Text from outside (model
answers, tool results, error messages) passes through `clean_text` before it is journaled:
each offending character becomes U+FFFD, so nothing else in the text is lost.

Text a person sends (a run's input, API fields) is refused instead (`text_problem`): they can
fix it, and silently changing what they asked would be worse.
"""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"


def clean_text(text: str) -> str:
    """`text` with NUL characters and unpaired surrogates replaced by U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate; a pair written as two halves is joined
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def clean_value(value: Any) -> Any:
    """A JSON-ready value with every string (keys too) cleaned; the same object if clean."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {
            (clean_text(k) if isinstance(k, str) else k): clean_value(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [clean_value(v) for v in value]
    return value


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored as it is, or None."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000)"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired UTF-16 surrogate (\\ud800-\\udfff), which is not text"
    return None
