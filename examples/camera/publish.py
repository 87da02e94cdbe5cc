"""Publish the camera's frames to NATS JetStream (the subject examples/camera/triggers.yaml
consumes), each with its digest as `Nats-Msg-Id` so a second publish is one run.

    python examples/camera/publish.py [--subject camera.frames] [--url nats://127.0.0.1:4222]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
from pathlib import Path

import nats

HERE = Path(__file__).resolve().parent


async def main(url: str, subject: str, stream: str) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        await js.stream_info(stream)
    except nats.js.errors.NotFoundError:  # the trigger creates it too, whichever runs first
        await js.add_stream(name=stream, subjects=[subject, f"{subject}.dead"])
    for frame in sorted((HERE / "frames").glob("*.png")):
        data = frame.read_bytes()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        headers = {"Nats-Msg-Id": digest, "Content-Type": "image/png", "Bosun-Name": frame.name}
        ack = await js.publish(subject, data, headers=headers)
        print(f"{frame.name}  {digest[:19]}…  stream seq {ack.seq}")
    await nc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="nats://127.0.0.1:4222")
    parser.add_argument("--subject", default="camera.frames")
    parser.add_argument("--stream", default="BOSUN_CAMERA_FRAMES")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.subject, args.stream))
