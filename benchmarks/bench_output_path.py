"""Time the two ways a network output becomes an 8-bit RGB image: float RGB then rounding
(``output_to_rgb``, what sr-run used for still images) against ``output_to_rgb8`` (each channel
rounded straight into uint8), for a luma-only network on a 640x360 frame at x2, x3 and x4.

    python benchmarks/bench_output_path.py [--rounds 15]

The "network output" is the frame's own Y, bicubically upscaled (real content, no model run), so
only the conversion is timed. Rounds alternate the two paths; medians and their ratio are printed
with the largest difference in levels.
"""

from __future__ import annotations

import argparse
import platform

import cv2
import numpy as np

from sredge.imaging.io import to_float
from sredge.imaging.model_io import (
    image_to_input_and_chroma,
    output_to_rgb,
    output_to_rgb8,
)
from sredge.models.descriptor import ModelDescriptor
from sredge.runtime.timing import sample_frame, time_interleaved


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    frame = to_float(sample_frame(360, 640))
    print(f"CPU: {platform.processor() or platform.machine()}, OpenCV threads {cv2.getNumThreads()}")
    for scale in (2, 3, 4):
        desc = ModelDescriptor(arch="bench", scale=scale, in_channels=1, out_channels=1, color_space="y",
                                value_range=1.0, pre_upsample=False)
        x, chroma = image_to_input_and_chroma(frame, desc)
        out = cv2.resize(x[0, 0], (640 * scale, 360 * scale), interpolation=cv2.INTER_CUBIC)[None, None]

        def float_path():
            return np.round(np.clip(output_to_rgb(out, desc, chroma), 0.0, 1.0) * 255.0).astype(np.uint8)

        def u8_path():
            return output_to_rgb8(out, desc, chroma)

        times = time_interleaved({"float": float_path, "u8": u8_path}, warmup=2, rounds=args.rounds)
        diff = np.abs(float_path().astype(int) - u8_path().astype(int))
        f, u = (float(np.median(times[k])) * 1e3 for k in ("float", "u8"))
        print(f"x{scale} ({640 * scale}x{360 * scale}): float path {f:.1f} ms, uint8 path {u:.1f} ms, "
              f"{f / u:.2f}x; max difference {diff.max()} level(s) on {(diff > 0).mean():.1e} of the values")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
