"""Model fallback: try the agent's model, then each fallback, skipping endpoints whose
circuit breaker is open. The response names the model that answered."""

from __future__ import annotations

from collections.abc import Sequence

from bosun.errors import ModelError
from bosun.models.base import ModelProvider, ModelRequest, ModelResponse
from bosun.models.breaker import Breakers


class RouterProvider:
    provider = "router"

    def __init__(self, providers: Sequence[tuple[str, ModelProvider]], breakers: Breakers):
        if not providers:
            raise ValueError("a router needs at least one model")
        self.providers = list(providers)
        self.breakers = breakers
        self.model = self.providers[0][1].model

    async def complete(self, request: ModelRequest) -> ModelResponse:
        errors: list[str] = []
        for endpoint, provider in self.providers:
            breaker = self.breakers.get(f"model:{endpoint}")
            if not breaker.allow():
                errors.append(f"{endpoint}: circuit open")
                continue
            try:
                response = await provider.complete(request)
            except ModelError as exc:
                breaker.failure()
                errors.append(f"{endpoint}: {exc}")
                if exc.error_type in ("bad_request", "script_exhausted", "malformed_response"):
                    raise  # the request itself is wrong; another endpoint will not help
                continue
            breaker.success()
            return response
        raise ModelError(
            "every configured model failed: " + "; ".join(errors), error_type="all_models_failed"
        )
