"""An agent's A2A agent card: who it is, where its endpoints are, how to authenticate,
what it can do (only what Bosun's A2A edge actually offers)."""

from __future__ import annotations

from a2a.types import a2a_pb2 as pb
from a2a.utils.constants import PROTOCOL_VERSION_1_0

from bosun import __version__
from bosun.spec.a2a import A2AAnswer, A2AInput, A2ASettings
from bosun.spec.agent import Agent

SCHEME = "bosunApiKey"


def base_path(agent: Agent) -> str:
    return f"/a2a/{agent.name}"


def agent_card(agent: Agent, base_url: str, *, public: bool) -> pb.AgentCard:
    settings = agent.a2a or A2ASettings()
    description = (
        settings.description
        or (agent.instructions.strip().splitlines() or [""])[0]
        or f"The Bosun agent {agent.name}"
    )
    url = base_url.rstrip("/") + base_path(agent)
    inputs = ["text/plain"] + (
        ["application/json", "*/*"] if settings.input is A2AInput.ENVELOPE else []
    )
    outputs = ["text/plain"] + (
        ["application/json", "application/octet-stream"]
        if settings.answer is A2AAnswer.PARTS
        else []
    )
    card = pb.AgentCard(
        name=agent.name,
        description=description,
        version=agent.version,
        provider=pb.AgentProvider(organization="Bosun", url="https://github.com/bosun"),
        documentation_url=f"{base_url.rstrip('/')}/openapi.json",
        supported_interfaces=[
            pb.AgentInterface(
                url=url, protocol_binding="JSONRPC", protocol_version=PROTOCOL_VERSION_1_0
            ),
            pb.AgentInterface(
                url=f"{url}/rest",
                protocol_binding="HTTP+JSON",
                protocol_version=PROTOCOL_VERSION_1_0,
            ),
        ],
        capabilities=pb.AgentCapabilities(
            streaming=True, push_notifications=True, extended_agent_card=False
        ),
        default_input_modes=inputs,
        default_output_modes=outputs,
        skills=[
            pb.AgentSkill(
                id=agent.name,
                name=agent.name,
                description=description,
                tags=list(settings.tags) or ["bosun"],
                input_modes=inputs,
                output_modes=outputs,
            )
        ],
    )
    card.security_schemes[SCHEME].http_auth_security_scheme.CopyFrom(
        pb.HTTPAuthSecurityScheme(
            scheme="Bearer",
            bearer_format="bosun API key",
            description=f"a Bosun API key (`bosun keys create`), Bosun {__version__}",
        )
    )
    if not public:
        requirement = card.security_requirements.add()
        requirement.schemes[SCHEME].CopyFrom(pb.StringList())
    return card
