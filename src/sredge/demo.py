"""The demo (``make demo``): a short clip made from a bundled photo, upscaled by the bundled default model.

``python -m sredge.demo [FOLDER]`` writes ``FOLDER/demo_clip.mp4`` (a slow pan across NASA's
public-domain astronaut portrait, 320x180, 2 s at 24 fps) and ``FOLDER/demo_clip_x2.mp4``.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from sredge.imaging.io import read_bundled_rgb
from sredge.runtime.video_io import Frame, VideoWriter

CLIP_SIZE = (320, 180)
FRAMES = 48
FPS = Fraction(24)


def make_clip(path: str | Path, frames: int = FRAMES) -> Path:
    """Write a pan-and-zoom clip over the bundled photo: (180, 320) RGB frames, H.264."""
    photo = read_bundled_rgb("astronaut.jpg")
    w, h = CLIP_SIZE
    tb = 1 / FPS
    with VideoWriter(path, w, h, tb, FPS, crf=16) as writer:
        for i in range(frames):
            t = i / max(frames - 1, 1)
            zoom = 1.6 - 0.4 * t  # window = zoom * clip size, panning right and down
            cw, ch = int(w * zoom), int(h * zoom)
            x = int((photo.shape[1] - cw) * t)
            y = int((photo.shape[0] - ch) * (0.2 + 0.3 * t))
            crop = photo[y:y + ch, x:x + cw]
            frame = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
            writer.write(Frame(np.ascontiguousarray(frame), i, i))
    return Path(path)


def main(argv: list[str] | None = None) -> int:
    from sredge.cli._app import run
    from sredge.cli.run import PROG, main as run_main

    folder = Path((argv or sys.argv[1:] or ["demo-out"])[0])
    folder.mkdir(parents=True, exist_ok=True)
    clip = make_clip(folder / "demo_clip.mp4")
    out = folder / "demo_clip_x2.mp4"
    code = run(PROG, run_main, ["--video", str(clip), "-o", str(out), "--overwrite"])  # the demo's own output
    if code == 0:
        print(f"demo: input {clip} ({CLIP_SIZE[0]}x{CLIP_SIZE[1]}), output {out}")
    return code


if __name__ == "__main__":
    sys.exit(main())
