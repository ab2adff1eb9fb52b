"""The demo (``make demo``): a short clip made from a bundled photo, upscaled by the bundled default model.

``python -m sredge.demo [FOLDER] [--frames N]`` needs only the core install (no torch, no OpenVINO)
and writes into FOLDER (default ``demo-out``), replacing its own earlier results and nothing else:

* ``demo_clip.mp4``: a slow pan across NASA's public-domain astronaut portrait, 320x180, 24 fps;
* ``demo_frame.png``: its middle frame, an image to try ``sr-run --image`` on;
* ``demo_clip_x2.mp4``: that clip upscaled x2 by ``sr-run`` with the bundled model (ONNX Runtime, CPU);
* ``demo_compare.png``: ``sr-run --compare``'s picture of the middle frame, bicubic | sredge.
"""

from __future__ import annotations

import argparse
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
SCALE = 2

OUTPUTS = ("demo_clip.mp4", "demo_frame.png", "demo_clip_x2.mp4", "demo_compare.png")
"""Every file the demo writes into its folder."""


def clip_frame(photo: np.ndarray, i: int, frames: int) -> np.ndarray:
    """Frame ``i`` of ``frames`` of the pan over ``photo`` (pure): (180, 320, 3) uint8 RGB."""
    w, h = CLIP_SIZE
    t = i / max(frames - 1, 1)
    zoom = 1.6 - 0.4 * t  # window = zoom * clip size, panning right and down
    cw, ch = int(w * zoom), int(h * zoom)
    x = int((photo.shape[1] - cw) * t)
    y = int((photo.shape[0] - ch) * (0.2 + 0.3 * t))
    crop = photo[y:y + ch, x:x + cw]
    return np.ascontiguousarray(cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA))


def make_clip(path: str | Path, frames: int = FRAMES) -> Path:
    """Write a pan-and-zoom clip over the bundled photo: (180, 320) RGB frames, H.264."""
    photo = read_bundled_rgb("astronaut.jpg")
    w, h = CLIP_SIZE
    with VideoWriter(path, w, h, 1 / FPS, FPS, crf=16) as writer:
        for i in range(frames):
            writer.write(Frame(clip_frame(photo, i, frames), i, i))
    return Path(path)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sredge.demo",
                                description="Upscale a short demo clip with the bundled x2 model (core install only) "
                                            "and picture bicubic | sredge.")
    p.add_argument("folder", nargs="?", type=Path, default=Path("demo-out"),
                   help=f"where to write {', '.join(OUTPUTS)} (default demo-out)")
    p.add_argument("--frames", type=int, default=FRAMES, help=f"frames of the clip (default {FRAMES}, 2 s)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns sr-run's exit code (0: the video and the comparison are written)."""
    from sredge.cli._app import run
    from sredge.cli.run import PROG
    from sredge.cli.run import main as run_main
    from sredge.imaging.io import write_image

    args = _parser().parse_args(argv)
    if args.frames < 1:
        print("demo: error: --frames must be >= 1", file=sys.stderr)
        return 2
    folder = args.folder
    if folder.exists() and not folder.is_dir():
        print(f"demo: error: {folder} is a file; name a folder for the demo's results", file=sys.stderr)
        return 2
    folder.mkdir(parents=True, exist_ok=True)
    clip, still, video, compare = (folder / name for name in OUTPUTS)
    print(f"demo: [1/2] making a {args.frames}-frame {CLIP_SIZE[0]}x{CLIP_SIZE[1]} clip from a bundled photo: {clip}",
          flush=True)
    make_clip(clip, args.frames)
    write_image(still, clip_frame(read_bundled_rgb("astronaut.jpg"), args.frames // 2, args.frames))
    print(f"demo: [2/2] sr-run --video {clip} --compare {compare} (bundled x{SCALE} model, ONNX Runtime on the CPU)",
          flush=True)
    # --overwrite: these names are the demo's own results from an earlier run, never a user's input.
    code = run(PROG, run_main, ["--video", str(clip), "-o", str(video), "--compare", str(compare), "--overwrite"])
    if code == 0:
        print(f"demo: comparison, bicubic | sredge x{SCALE} (middle frame): {compare}")
        print(f"demo: upscaled video ({CLIP_SIZE[0] * SCALE}x{CLIP_SIZE[1] * SCALE}): {video}")
        print(f"demo: next, an image: sr-run --image {still} --compare compare.png")
    return code


if __name__ == "__main__":
    sys.exit(main())
