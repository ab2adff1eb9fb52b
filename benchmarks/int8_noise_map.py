"""Where an INT8 file's extra error lands: inside each image, or in a band along its borders.

    python benchmarks/int8_noise_map.py FP32.onnx INT8.onnx [--dataset DIR] [--band 12]

Both files run on ONNX Runtime (CPU, whole images, no tiling) over a benchmark set. Errors are
measured as sr-bench measures Y-PSNR: the output's Y in 8-bit levels against the ground truth's, with
``scale`` pixels cropped off each border. For every image the script prints, inside and in the band:
the FP32 file's mean squared error, how much the INT8 file adds to it (in grey levels squared), and
the drop in dB that causes. Noise that is added evenly everywhere points at the bit depth of the
quantized tensors; a drop concentrated in the band points at padding and other border handling.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _family import ASSETS

from sredge.benchmarks.datasets import load_dataset, load_pair
from sredge.imaging.io import to_float
from sredge.imaging.metrics import y_channel
from sredge.imaging.model_io import output_to_image
from sredge.models.onnx_file import read_descriptor
from sredge.runtime.backends.ort import OrtBackend
from sredge.runtime.tiling import TileConfig
from sredge.runtime.upscaler import Upscaler


def squared_errors(model: Path, dataset) -> dict[str, np.ndarray]:
    """Per image: (H - 2s, W - 2s) squared Y error in 8-bit levels, ``s`` the scale (cropped as Y-PSNR is)."""
    desc = read_descriptor(model)
    out = {}
    s = dataset.scale
    with OrtBackend(model) as backend:
        ups = Upscaler(backend.run, desc, TileConfig(tile=None))
        for sample in dataset.samples:
            hr, lr = load_pair(sample, s)
            sr = output_to_image(ups.infer(ups.preprocess(lr).x), desc)
            err = y_channel(sr) - y_channel(to_float(hr))
            out[sample.name] = err[s:-s, s:-s] ** 2
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fp32", type=Path)
    ap.add_argument("int8", type=Path)
    ap.add_argument("--dataset", type=Path, default=ASSETS / "benchmarks" / "Set5",
                    help="benchmark folder (default: Set5 of the shared assets, SREDGE_ASSETS)")
    ap.add_argument("--band", type=int, default=12, help="border band width in output pixels (default 12)")
    args = ap.parse_args()
    dataset = load_dataset(args.dataset, read_descriptor(args.fp32).scale)
    ref, got = squared_errors(args.fp32, dataset), squared_errors(args.int8, dataset)
    print(f"{'image':12s} {'region':8s} {'share':>6s} {'FP32 MSE':>9s} {'added':>7s} {'drop dB':>8s}")
    for name in ref:
        h, w = ref[name].shape
        inner = np.zeros((h, w), bool)
        inner[args.band:h - args.band, args.band:w - args.band] = True
        for region, mask in (("all", np.ones_like(inner)), ("inside", inner), ("band", ~inner)):
            if not mask.any():
                continue
            a, b = float(ref[name][mask].mean()), float(got[name][mask].mean())
            print(f"{name:12s} {region:8s} {mask.mean():6.2f} {a:9.3f} {b - a:7.3f} {10 * np.log10(b / a):8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
