"""One remote A2A agent's client, on the official SDK (`a2a-sdk`): the card fetched, the
credentials its card asks for read from the worker's environment, the SDK's client made for
the transport the card prefers among JSON-RPC and HTTP+JSON.

Credentials are applied by the SDK's `AuthInterceptor` per security scheme the card
declares (a bearer token, an API key in a header); the value comes from the variable the
entry names, read at each request, never stored: it goes only into the request's headers,
not into a log line, an error or the journal.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from bosun.errors import SourceUnavailable
from bosun.spec.a2a_remote import A2aAgent

# Transports Bosun speaks with a remote agent, in its order of preference (the card's own
# order wins, as the SDK recommends).
BINDINGS = ["JSONRPC", "HTTP+JSON"]


def _credentials(agent: A2aAgent, label: str) -> Any:
    from a2a.client import CredentialService

    class EnvCredentials(CredentialService):
        """The credential of a scheme: the variable the entry names for it, else
        `token_env`; None (nothing sent) when the entry names none."""

        async def get_credentials(self, security_scheme_name: str, context: Any) -> str | None:
            var = agent.credentials.get(security_scheme_name) or agent.token_env
            if var is None:
                return None
            value = os.environ.get(var)
            if not value:
                raise SourceUnavailable(
                    f"A2A agent {label}: its card asks for credentials (scheme "
                    f"{security_scheme_name}) and the environment variable {var} is not set "
                    "in this worker; nothing was sent"
                )
            return value

    return EnvCredentials()


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def fetch_card(http: httpx.AsyncClient, agent: A2aAgent) -> Any:
    """The agent card at the entry's URL, parsed by the SDK (0.3 cards are upgraded)."""
    from a2a.client.card_resolver import parse_agent_card

    url = agent.card_url
    try:
        answer = await http.get(url)
    except httpx.HTTPError as exc:
        raise SourceUnavailable(
            f"A2A agent {url}: its card could not be fetched: {describe(exc)}"
        ) from None
    if answer.status_code != 200:
        raise SourceUnavailable(
            f"A2A agent {url}: fetching its card answered HTTP {answer.status_code}"
        )
    try:
        return parse_agent_card(answer.json())
    except Exception as exc:
        raise SourceUnavailable(
            f"A2A agent {url}: its card is not a valid agent card: {exc}"
        ) from None


def make_client(card: Any, agent: A2aAgent, http: httpx.AsyncClient, label: str) -> Any:
    """The SDK's client for `card`, polling (no stream held while Bosun's run is parked)."""
    from a2a.client import AuthInterceptor, ClientConfig, ClientFactory

    config = ClientConfig(
        streaming=False,
        polling=True,
        httpx_client=http,
        supported_protocol_bindings=list(BINDINGS),
    )
    try:
        return ClientFactory(config).create(
            card, interceptors=[AuthInterceptor(_credentials(agent, label))]
        )
    except ValueError as exc:  # no transport in common
        offered = [i.protocol_binding for i in card.supported_interfaces]
        raise SourceUnavailable(
            f"A2A agent {label}: it offers {', '.join(offered) or 'no transport'}; Bosun speaks "
            f"{' and '.join(BINDINGS)} ({exc})"
        ) from None


def sent_may_have_arrived(exc: BaseException) -> bool | None:
    """For an SDK client error: False when the request surely did not reach the agent (no
    connection), True when it may have (dropped, timed out), None for a protocol error
    (the agent answered: the call failed)."""
    from a2a.client.errors import A2AClientError, A2AClientTimeoutError

    cause = exc.__cause__
    if isinstance(exc, A2AClientTimeoutError) or isinstance(cause, httpx.TimeoutException):
        return not isinstance(cause, httpx.ConnectTimeout)
    if isinstance(cause, httpx.ConnectError):
        return False
    if isinstance(cause, httpx.RequestError):
        return True
    if isinstance(exc, httpx.ConnectError):
        return False
    if isinstance(exc, httpx.RequestError):
        return True
    if isinstance(exc, A2AClientError) and "HTTP Error 5" in str(exc):
        return True
    return None


__all__ = ["BINDINGS", "describe", "fetch_card", "make_client", "sent_may_have_arrived"]
