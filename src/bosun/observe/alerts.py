"""Alert sinks for watchdog findings: the log, and a webhook (JSON POST, retried)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import Protocol

import httpx

from bosun.store.observing import Finding

log = logging.getLogger("bosun.alerts")


class AlertSink(Protocol):
    async def send(self, finding: Finding) -> bool: ...


class LogAlerts:
    """Every finding as a WARNING on the `bosun.alerts` logger (JSON with `--log-json`)."""

    async def send(self, finding: Finding) -> bool:
        log.warning(
            "run %s flagged %s: %s",
            finding.run_id,
            finding.kind,
            finding.detail,
            extra={"run_id": finding.run_id, "finding": finding.kind, "agent": finding.agent},
        )
        return True


class WebhookAlerts:
    """POST each finding as JSON to `url`; retried with exponential backoff on a network
    error or a 5xx/429 answer, `attempts` times in all. A 4xx answer is not retried."""

    def __init__(
        self,
        url: str,
        *,
        attempts: int = 4,
        backoff: float = 0.5,
        timeout: float = 5.0,
        headers: dict[str, str] | None = None,
    ):
        self.url = url
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.headers = headers or {}

    async def send(self, finding: Finding) -> bool:
        body = {"type": "bosun.run_flagged", **asdict(finding)}
        async with httpx.AsyncClient(timeout=self.timeout, headers=self.headers) as client:
            for attempt in range(1, self.attempts + 1):
                problem: str
                try:
                    response = await client.post(self.url, json=body)
                    if response.is_success:
                        return True
                    problem = f"HTTP {response.status_code}"
                    if response.status_code < 500 and response.status_code != 429:
                        break
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                if attempt < self.attempts:
                    log.info("alert webhook attempt %d failed (%s); retrying", attempt, problem)
                    await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
        log.error("alert webhook %s gave up on run %s: %s", self.url, finding.run_id, problem)
        return False
