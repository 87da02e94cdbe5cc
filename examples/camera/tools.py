"""The camera pipeline's tools. Both name the frame (its artifact digest), so every
decision in the journal points at the picture it was made on."""

from __future__ import annotations

from bosun import tool


@tool(effect="irreversible")
def alert_police(frame: str, threat: float, summary: str) -> dict:
    """Report a threat to the police dispatcher, with the frame it was seen on."""
    # Offline stand-in for the dispatcher's API: the case number is derived from the frame.
    return {"case": "P-" + frame.removeprefix("sha256:")[:8], "frame": frame, "threat": threat}


@tool(effect="write", idempotent=True)
def log_frame(frame: str, threat: float, summary: str) -> dict:
    """Record a frame that needs no action."""
    return {"logged": frame, "threat": threat}
