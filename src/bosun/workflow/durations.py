"""The DSL's durations as seconds: an ISO 8601 duration (`PT1H30M`, `P2D`) or an object
(`{minutes: 5, seconds: 30}`)."""

from __future__ import annotations

import re
from typing import Any

_ISO = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_UNITS = {"days": 86400.0, "hours": 3600.0, "minutes": 60.0, "seconds": 1.0, "milliseconds": 0.001}


def seconds(duration: Any) -> float:
    """`duration` in seconds; a number is seconds already."""
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        return float(duration)
    if isinstance(duration, dict):
        return sum(float(duration.get(unit, 0)) * factor for unit, factor in _UNITS.items())
    if isinstance(duration, str):
        match = _ISO.match(duration.strip())
        if match and duration.strip() != "P":
            return sum(float(v) * _UNITS[k] for k, v in match.groupdict().items() if v)
    raise ValueError(f"{duration!r} is not a duration: write ISO 8601 (PT30S) or {{seconds: 30}}")
