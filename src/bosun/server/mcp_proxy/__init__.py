"""`bosun mcp proxy`: upstream MCP servers' tools for any MCP client, governed by Bosun
(issue 12, the governing proxy; docs/mcp.md, "The governing proxy").

The seam: a proxy is an agent (its tools the upstream servers' tools, pinned) whose
model is the MCP client. Each client session is one run of it, driven by the ordinary
step loop, so every call passes the engine's own governance and journal, nothing else.

    commands.py   the `bosun mcp proxy` parser and handler
    config.py     proxy.yaml -> the proxy's agent and its session settings
    model.py      the client as the run's model (a channel of calls per run)
    sessions.py   one run per client session; each call answered from the journal
    server.py     ProxyServer: tools/list and tools/call over the sessions
    serve.py      the process: runtime, stdio or HTTP (the Guard of `mcp serve`)
"""
