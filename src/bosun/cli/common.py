"""What every `bosun` command shares: argument types, JSON output, who is acting."""

from __future__ import annotations

import argparse
import getpass
import os
import re
from typing import Any

import orjson

from bosun.engine.runtime import RunResult

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """`30d`, `12h`, `15m`, `90s`, `2w` -> seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: write a number and a unit, e.g. 30d, 12h, 15m, 90s"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"tag {text!r}: write it as key=value, e.g. order=1234")
    return key, value


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def result_dict(result: RunResult) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "status": result.status,
        "output": result.output,
        "reason": result.reason,
        "steps": result.steps,
        "tool_calls": result.tool_calls,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "cost": result.cost,
    }


def whoami(args: argparse.Namespace) -> str:
    """Who decides or acts: `--by`, else $BOSUN_USER, else the login name."""
    return args.by or os.environ.get("BOSUN_USER") or getpass.getuser()
