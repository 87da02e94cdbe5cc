"""Remote A2A agents as a tool source (docs/a2a.md, "Client").

Importing this package (which `import bosun` does) registers the `a2a` source kind, the
discovery an agent file's `a2a:` entries use, and the watcher every worker runs for the
remote tasks of parked runs (`watcher.py`). The SDK itself (`a2a`) is imported only when a
remote agent is first reached, so an agent without A2A tools never pays for it.

    from bosun import Agent
    from bosun.tools.a2a import a2a_tools

    agent = Agent(name="support", tools=[*a2a_tools({"card": "https://billing.example",
                                                      "token_env": "BILLING_TOKEN"})])
"""

from __future__ import annotations

import asyncio
import concurrent.futures

from bosun.errors import SourceUnavailable, SpecError
from bosun.spec.a2a_remote import KIND, A2aAgent, a2a_tools, register_discoverer
from bosun.spec.definition import SourceSpec, ToolDefinition
from bosun.tools.a2a.source import A2aSource
from bosun.tools.a2a.watcher import A2aWatcher, a2a_watcher
from bosun.tools.sources import register_source_kind, register_watcher


async def discover_once(spec: SourceSpec) -> list[ToolDefinition]:
    """Fetch the card, list its skills, close."""
    source = A2aSource(spec)
    await source.open()
    try:
        return await source.discover()
    finally:
        await source.close()


def discover_now(spec: SourceSpec) -> list[ToolDefinition]:
    """`discover_once` from synchronous code (loading an agent), inside a running event
    loop too: then on a thread of its own, with its own loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False
    else:
        running = True
    try:
        if not running:
            return asyncio.run(discover_once(spec))
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bosun-a2a") as pool:
            return pool.submit(asyncio.run, discover_once(spec)).result()
    except SourceUnavailable as exc:
        raise SpecError(f"{exc} (needed to list its skills for the agent)") from None


register_source_kind(KIND, A2aSource)
register_discoverer(discover_now)
register_watcher(KIND, a2a_watcher)

__all__ = ["A2aAgent", "A2aSource", "A2aWatcher", "a2a_tools", "discover_once"]
