#!/usr/bin/env bash
# Run the A2A TCK (a2aproject/a2a-tck, branch 1.0-dev, checked out at $1 with its own venv
# in $1/.venv) against a fresh `bosun serve --agent examples/a2a-tck/agent.yaml`: MUST level
# (a failure fails this script), then SHOULD level (reported). `make a2a-tck TCK=DIR`.
set -euo pipefail
TCK=${1:?usage: scripts/a2a_tck.sh /path/to/a2a-tck}
PY=${BOSUN_PYTHON:-.venv/bin/python}
TCKPY="$TCK/.venv/bin/python"
[ -x "$TCKPY" ] || { echo "no $TCKPY: create the TCK's venv (cd $TCK && python3 -m venv .venv && .venv/bin/pip install -e .)" >&2; exit 2; }
PORT=${PORT:-$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
WORK=$(mktemp -d)
"$PY" -m bosun serve --agent examples/a2a-tck/agent.yaml --host 127.0.0.1 --port "$PORT" \
  --db "$WORK/tck.db" --a2a-push-allow-loopback >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/.well-known/agent-card.json" >/dev/null && break
  sleep 0.2
done
cd "$TCK"
status=0
"$TCKPY" run_tck.py --sut-host "http://127.0.0.1:$PORT" --level must --transport jsonrpc,http_json || status=$?
"$TCKPY" run_tck.py --sut-host "http://127.0.0.1:$PORT" --level should --transport jsonrpc,http_json || true
exit $status
