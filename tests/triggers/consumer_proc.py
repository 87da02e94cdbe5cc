"""A process consuming a triggers file's queue (what `bosun worker --triggers` runs), for
the SIGKILL test. With a marker path, it stops dead after the run of the first message is
durably created and before that message is acknowledged: a journal listener (called once
the run's first events are committed) writes the marker and blocks the event loop, so the
ack never goes out, until the test SIGKILLs the process."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from bosun.engine.runtime import Runtime
from bosun.journal.events import RunStarted
from bosun.triggers.runner import Triggers


async def main(db: str, triggers_file: str, marker: str | None) -> None:
    async with Runtime(db) as rt:
        if marker:

            def stop_dead(run_id, first_seq, events) -> None:
                if any(isinstance(e, RunStarted) for e in events):
                    Path(marker).write_text(run_id)
                    time.sleep(3600)  # between creating the run and acking its message

            rt.journal.listen(stop_dead)
        stop = asyncio.Event()
        triggers = Triggers.load(rt, triggers_file)
        await triggers.start(stop)
        await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None))
