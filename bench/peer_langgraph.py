"""LangGraph on the shared workload, written as a LangGraph user would write a tool-using agent.

A `StateGraph` over `MessagesState` (a list of messages with the `add_messages` reducer):
"model" node (an instant scripted model: an `AIMessage` with a tool call while steps remain,
then a final answer) -> "tool" node (a trivial tool, answering with a `ToolMessage`) -> "model".
Compiled with `SqliteSaver` on a file and invoked with `durability="sync"`: each super-step's
checkpoint is written before the next step starts.

    python bench/peer_langgraph.py --dir /tmp/b --runs 5 --steps 50 --profile matched
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from typing import Any

from common import (
    Clock,
    apply_pragmas,
    db_bytes,
    emit,
    fresh,
    measures,
    read_settings,
    storage_lengths,
    summarize,
    worker_args,
)
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, MessagesState, StateGraph


def add(n: int) -> int:
    return n + 1


def build(steps: int, saver: SqliteSaver) -> Any:
    def model(state: MessagesState) -> dict[str, Any]:
        turn = sum(1 for m in state["messages"] if isinstance(m, AIMessage))
        if turn < steps - 1:
            call = {"name": "add", "args": {"n": turn}, "id": f"call_{turn}", "type": "tool_call"}
            return {"messages": [AIMessage(content="", tool_calls=[call])]}
        return {"messages": [AIMessage(content="done")]}

    def run_tool(state: MessagesState) -> dict[str, Any]:
        last = state["messages"][-1]
        out = [
            ToolMessage(content=str(add(**c["args"])), tool_call_id=c["id"], name=c["name"])
            for c in last.tool_calls  # type: ignore[union-attr]
        ]
        return {"messages": out}

    def route(state: MessagesState) -> str:
        last = state["messages"][-1]
        return "tool" if getattr(last, "tool_calls", None) else END

    graph = StateGraph(MessagesState)
    graph.add_node("model", model)
    graph.add_node("tool", run_tool)
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", route, ["tool", END])
    graph.add_edge("tool", "model")
    return graph.compile(checkpointer=saver)


def open_saver(path: str, profile: str) -> tuple[sqlite3.Connection, SqliteSaver]:
    conn = sqlite3.connect(path, check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()  # creates the tables and sets WAL, as the first use would
    apply_pragmas(conn, profile)
    return conn, saver


def one_run(app: Any, steps: int) -> Clock:
    config = {"configurable": {"thread_id": uuid.uuid4().hex}, "recursion_limit": 4 * steps + 10}
    with Clock(steps) as clock:
        out = app.invoke({"messages": [HumanMessage("go")]}, config, durability="sync")
    messages = out["messages"]
    if messages[-1].content != "done" or len(messages) != 2 * steps:
        raise SystemExit(f"langgraph run ended badly: {len(messages)} messages")
    return clock


def main() -> None:
    args = worker_args("LangGraph (SqliteSaver, durability=sync) per-step overhead and storage")
    steps = args.steps
    result: dict[str, Any] = {"framework": "langgraph", "profile": args.profile, "steps": steps}

    if measures(args, "time"):
        path = fresh(os.path.join(args.dir, "langgraph_time.db"))
        conn, saver = open_saver(path, args.profile)
        result["settings"] = read_settings(conn)
        app = build(steps, saver)
        one_run(app, steps)  # warm-up
        clocks = [one_run(app, steps) for _ in range(args.runs)]
        conn.close()
        result["runs"] = args.runs
        result.update(summarize([c.wall for c in clocks], [c.cpu for c in clocks]))

    if measures(args, "storage"):
        storage: dict[str, float] = {}
        for n in storage_lengths(args):
            path = fresh(os.path.join(args.dir, f"langgraph_storage_{n}.db"))
            conn, saver = open_saver(path, args.profile)
            result.setdefault("settings", read_settings(conn))
            before = db_bytes(path)
            one_run(build(n, saver), n)
            after = db_bytes(path)
            conn.close()
            storage[str(n)] = (after - before) / n
        result["bytes_per_step"] = storage

    emit(result)


if __name__ == "__main__":
    main()
