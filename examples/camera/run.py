"""The camera pipeline, offline: every frame of `frames.yaml` -> an extractor agent that
summarises it (the frame is attached: the model gets it as an image content part, the
journal keeps its artifact reference) -> a classifier agent (a tool of the extractor: a
child run) -> policy on the police tool: a clear threat is reported at once (irreversible,
audited), an ambiguous one waits for the overseer's approval, the rest are logged.

    python examples/camera/run.py --db camera.db

Prints one line per frame: its digest, the decision, and the runs that made it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bosun import Agent, Media, Runtime  # noqa: E402
from bosun.journal.calls import calls  # noqa: E402
from bosun.spec.media import digest_of  # noqa: E402
from tools import alert_police, log_frame  # noqa: E402

LOW, HIGH = 0.4, 0.8  # the policy's thresholds (policy.yaml), for choosing the tool


def classifier(digest: str, sees: str, threat: float) -> Agent:
    act = "alert_police" if threat >= LOW else "log_frame"
    return Agent(
        name="classifier",
        instructions="Score the threat in a frame's summary (0..1); report threats to the "
        "police, log the rest. Name the frame in every call.",
        model={
            "provider": "scripted",
            "turns": [
                {
                    "tool_calls": [
                        {
                            "id": "act",
                            "name": act,
                            "arguments": {"frame": digest, "threat": threat, "summary": sees},
                        }
                    ]
                },
                {"content": f"threat {threat:.2f}: {act}"},
            ],
        },
        tools=[alert_police, log_frame],
        policy=str(HERE / "policy.yaml"),
        limits={"max_steps": 4},
    )


def extractor(digest: str, sees: str, threat: float) -> Agent:
    return Agent(
        name="extractor",
        instructions="Describe the attached camera frame in one sentence, then hand the "
        "description to the classifier.",
        model={
            "provider": "scripted",  # stands in for a multimodal model (see frames.yaml)
            "turns": [
                {
                    "tool_calls": [
                        {
                            "id": "classify",
                            "name": "classifier",
                            "arguments": {"input": f"frame {digest}: {sees}"},
                        }
                    ]
                },
                {"content": sees},
            ],
        },
        tools=[classifier(digest, sees, threat)],
        limits={"max_steps": 6},
    )


async def decision(rt: Runtime, root_id: str) -> tuple[str, str]:
    """(decision, classifier run id) of one frame's tree, read from the journal."""
    for run in await rt.store.list_runs(root_id=root_id, limit=10):
        if run.agent != "classifier":
            continue
        for call in calls(await rt.events(run.id)):
            outcome = str(call.outcome)
            if call.tool == "log_frame" and outcome == "done":
                return "logged", run.id
            if call.tool == "alert_police" and outcome == "done":
                return f"police alerted (case {call.result['case']})", run.id
            if call.tool == "alert_police" and call.approval_requested is not None:
                approval = call.approval_requested.approval_id
                return f"waiting for the overseer (bosun approve {approval})", run.id
            if call.tool == "alert_police":
                return f"police call {outcome}", run.id
    return "no decision", root_id


async def main(db: str) -> int:
    frames = yaml.safe_load((HERE / "frames.yaml").read_text())
    async with Runtime(db) as rt:
        for item in frames:
            path = HERE / item["file"]
            data = path.read_bytes()
            digest = digest_of(data)
            agent = extractor(digest, item["sees"], float(item["threat"]))
            result = await rt.run(
                agent,
                "Summarise this frame.",
                attachments=[Media(data, "image/png", path.name)],
                tags={"camera": "yard", "frame": path.name},
            )
            what, child = await decision(rt, result.run_id)
            print(f"{path.name}  {digest[:19]}…  {what}  (run {result.run_id}, classifier {child})")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=os.environ.get("BOSUN_DB") or "camera.db")
    sys.exit(asyncio.run(main(parser.parse_args().db)))
