"""Bosun agents as A2A 1.0 servers (`bosun serve`; docs/a2a.md): agent cards, the JSON-RPC
and HTTP+JSON bindings of the official `a2a-sdk`, and a request handler whose tasks are
Bosun runs."""
