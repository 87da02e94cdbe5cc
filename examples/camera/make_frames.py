"""Writes the example's frames (tiny PNGs, zlib and struct only): `python make_frames.py`.

Each frame is a 48x32 picture of a yard: a background and a figure (a rectangle) whose
colour and size stand for what the camera saw. The PNGs are committed; this script is
how they were made.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
W, H = 48, 32

# name: (background, figure colour, figure box (x0, y0, x1, y1) or None)
FRAMES = {
    "01-empty-yard.png": ((70, 140, 60), None, None),
    "02-intruder-with-crowbar.png": ((40, 40, 60), (220, 20, 20), (18, 6, 30, 30)),
    "03-figure-at-the-fence.png": ((25, 25, 40), (150, 150, 150), (38, 10, 44, 30)),
    "04-cat-on-the-wall.png": ((70, 140, 60), (230, 160, 40), (8, 4, 14, 8)),
}


def png(pixels: list[list[tuple[int, int, int]]]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    raw = b"".join(b"\x00" + b"".join(bytes(p) for p in row) for row in pixels)
    header = struct.pack(">IIBBBBB", len(pixels[0]), len(pixels), 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def frame(background, colour, box) -> bytes:
    pixels = [[background] * W for _ in range(H)]
    if box is not None:
        x0, y0, x1, y1 = box
        for y in range(y0, y1):
            for x in range(x0, x1):
                pixels[y][x] = colour
    return png(pixels)


if __name__ == "__main__":
    for name, spec in FRAMES.items():
        (HERE / "frames" / name).write_bytes(frame(*spec))
        print("wrote", HERE / "frames" / name)
