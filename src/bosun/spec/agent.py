"""An agent: model, instructions, tools and limits. Plain data; running it is the engine's job."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from bosun.errors import BosunError, SpecError
from bosun.spec.limits import Limits, RateLimit
from bosun.spec.model import ModelSpec
from bosun.spec.refs import load_tool
from bosun.spec.tool import RetryPolicy, Tool, make_tool

PROVIDERS = ("openai", "scripted", "sim")
AUTONOMY = ("observe", "suggest", "auto_notify", "auto")


def parse_model(model: ModelSpec | str | dict[str, Any]) -> ModelSpec:
    """`"openai:gpt-4o-mini"`, `"scripted"`, a dict, or a `ModelSpec`."""
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, dict):
        return ModelSpec.model_validate(model)
    provider, _, name = model.partition(":")
    if provider not in PROVIDERS:
        raise SpecError(
            f"model {model!r}: write it as `provider:name` with provider one of {PROVIDERS}, "
            "e.g. `openai:gpt-4o-mini`"
        )
    return ModelSpec(provider=provider, name=name or provider)  # type: ignore[arg-type]


def _as_tool(item: Tool | Callable[..., Any] | str) -> Tool:
    if isinstance(item, Tool):
        return item
    if isinstance(item, str):
        return load_tool(item)
    if callable(item):
        return make_tool(item)
    raise SpecError(f"tools: {item!r} is not a tool, a function or a `module:function` reference")


@dataclass
class Agent:
    """Define an agent in Python; `bosun.spec.loader.load_agent` builds the same from YAML."""

    name: str
    model: ModelSpec | str = "openai:gpt-4o-mini"
    instructions: str = ""
    tools: Sequence[Tool | Callable[..., Any] | str] = ()
    limits: Limits = field(default_factory=Limits)
    version: str = "1"
    source: str | None = None  # file or module the agent was loaded from
    # Governance (see docs/governance.md). `policy` is a policy document (dict), a
    # `bosun.govern.Policy`, or the path of a policy YAML file.
    policy: Any = None
    autonomy: str = "auto"
    tool_autonomy: dict[str, str] = field(default_factory=dict)
    rate_limits: Sequence[RateLimit] = ()
    # Tools a pinned version names but this process cannot import: name -> why.
    unavailable_tools: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise SpecError(f"agent name {self.name!r}: use letters, digits, '-' and '_'")
        self.model = parse_model(self.model)
        self.tools = [_as_tool(t) for t in self.tools]
        if self.autonomy not in AUTONOMY or any(
            v not in AUTONOMY for v in self.tool_autonomy.values()
        ):
            raise SpecError(f"agent {self.name}: autonomy must be one of {AUTONOMY}")
        self.rate_limits = [
            r if isinstance(r, RateLimit) else RateLimit.model_validate(r) for r in self.rate_limits
        ]
        if hasattr(self.policy, "model_dump"):
            self.policy = self.policy.model_dump(mode="json", exclude_defaults=True)
        names = [t.name for t in self.tools]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise SpecError(f"agent {self.name}: two tools are named {sorted(duplicates)}")
        self._snapshot: dict[str, Any] | None = None

    @property
    def model_spec(self) -> ModelSpec:
        assert isinstance(self.model, ModelSpec)
        return self.model

    @property
    def tool_map(self) -> dict[str, Tool]:
        return {t.name: t for t in self.tools}  # type: ignore[union-attr]

    def snapshot(self) -> dict[str, Any]:
        """The pinned definition journaled with every run (no secrets, no code)."""
        if self._snapshot is None:
            self._snapshot = {
                "name": self.name,
                "version": self.version,
                "instructions": self.instructions,
                "model": self.model_spec.model_dump(mode="json", exclude_defaults=True),
                "tools": [t.declaration() for t in self.tools],  # type: ignore[union-attr]
                "limits": self.limits.model_dump(mode="json"),
                "source": self.source,
                "policy": self.policy,
                "autonomy": self.autonomy,
                "tool_autonomy": self.tool_autonomy,
                "rate_limits": [r.model_dump(mode="json") for r in self.rate_limits],
            }
        return self._snapshot

    @property
    def version_id(self) -> str:
        """`name@version+digest`: the digest changes whenever the definition does."""
        snapshot = self.snapshot()
        cached = getattr(self, "_version_id", None)
        if cached is not None and cached[0] is snapshot:
            return cached[1]
        digest = hashlib.sha256(orjson.dumps(snapshot, option=orjson.OPT_SORT_KEYS))
        version_id = f"{self.name}@{self.version}+{digest.hexdigest()[:10]}"
        self._version_id = (snapshot, version_id)
        return version_id

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any]) -> Agent:
        """Rebuild the pinned agent a run started with.

        Tool code is imported again by reference (code cannot be journaled), but
        what the run relies on (effect, idempotency, timeout, retries, the schema
        the model was shown) comes from the pinned declaration.
        """
        tools: list[Tool] = []
        unavailable: dict[str, str] = {}
        for decl in snapshot.get("tools", []):
            try:
                live = load_tool(decl["ref"])
            except (BosunError, ImportError, SyntaxError) as exc:
                unavailable[decl["name"]] = str(exc)
                continue
            tools.append(
                Tool(
                    name=decl["name"],
                    description=live.description,
                    fn=live.fn,
                    params=live.params,
                    effect=decl["effect"],
                    idempotent=decl["idempotent"],
                    timeout=decl["timeout"],
                    retry=RetryPolicy(**decl["retry"]),
                    context_param=live.context_param,
                    ref=decl["ref"],
                    trusted=decl.get("trusted", True),
                    undo=decl.get("undo"),
                    sensitive=tuple(decl.get("sensitive", ())),
                )
            )
        agent = cls(
            name=snapshot["name"],
            model=ModelSpec.model_validate(snapshot["model"]),
            instructions=snapshot["instructions"],
            tools=tools,
            limits=Limits.model_validate(snapshot["limits"]),
            version=snapshot["version"],
            source=snapshot.get("source"),
            unavailable_tools=unavailable,
            policy=snapshot.get("policy"),
            autonomy=snapshot.get("autonomy", "auto"),
            tool_autonomy=snapshot.get("tool_autonomy", {}),
            rate_limits=snapshot.get("rate_limits", []),
        )
        agent._snapshot = snapshot
        return agent
