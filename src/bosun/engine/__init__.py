"""The step loop, replay, limits, workers and leases."""

from bosun.engine.runtime import RunResult, Runtime
from bosun.engine.worker import Worker

__all__ = ["RunResult", "Runtime", "Worker"]
