PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo demo-mcp test lint bench clean a2a-tck

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

# The support agent's refund (approval, resume, audit), then one call of a tool served by a
# real MCP server: mcp-server-time over stdio, installed here (it is not a Bosun dependency).
demo: $(VENV)/.installed
	$(BIN)/pip install --quiet 'mcp-server-time>=2026.10.19'
	$(BIN)/python examples/support/demo.py

# An agent whose tool comes from a real MCP server (mcp-server-time, over stdio).
demo-mcp: $(VENV)/.installed
	$(BIN)/pip install --quiet 'mcp-server-time>=2026.10.19'
	mkdir -p .demo
	$(BIN)/bosun run examples/mcp/agent.yaml --input "What time is it in Lisbon?" --db .demo/mcp.db

test: $(VENV)/.installed-dev
	sh scripts/ensure-chromium.sh
	@# The MCP conformance suite and Node 22 (package.json); its tests skip without npm.
	@if ! command -v npm >/dev/null 2>&1; then echo "npm not found: MCP conformance tests skip"; \
	elif [ -f node_modules/.package-lock.json ] && \
	     [ ! package-lock.json -nt node_modules/.package-lock.json ]; then :; \
	else npm ci --no-audit --no-fund --loglevel=error; fi
	$(BIN)/ruff check src tests bench examples
	$(BIN)/pytest

# The A2A TCK against a fresh server (docs/conformance/a2a.md). TCK=DIR: a checkout of
# a2aproject/a2a-tck at branch 1.0-dev with its venv in DIR/.venv (not part of Bosun).
a2a-tck: $(VENV)/.installed
	@test -n "$(TCK)" || { echo "usage: make a2a-tck TCK=/path/to/a2a-tck"; exit 2; }
	BOSUN_PYTHON=$(BIN)/python scripts/a2a_tck.sh "$(TCK)"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

bench: $(VENV)/.installed-dev
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .demo .pytest_cache
