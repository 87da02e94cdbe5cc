"""`bosun mcp serve`: Bosun's agents and control plane as an MCP server (issue 12).

An edge like the API and the console, so it lives in `server/` and goes through
`bosun.server.ops` for everything it reads or does (tenants, roles, redaction).

    commands.py        the `bosun mcp serve` parser and handler
    serve.py           the process: runtime, worker, stdio or HTTP (uvicorn)
    server.py          BosunMCPServer: the SDK's MCPServer, tools gated by the caller's role
    guard.py           HTTP: Host/Origin (DNS rebinding), then the Bosun API key
    agents.py          one tool per agent: submit a run, follow it, answer (or what is pending)
    control.py         list_runs, show_run, list_approvals, approve, deny, kill
    errors.py          the operations layer's refusals as MCP tool errors
    fixtures*.py,      the conformance suite's fixtures (--conformance-fixtures only)
    fixture_content.py
"""
