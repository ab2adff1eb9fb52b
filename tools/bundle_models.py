"""Make the bundled default models: train, export, fine-tune INT8 (QAT), measure, write models.json.

    python tools/bundle_models.py                      # train x2, x3, x4 from scratch (about 1 h each on one core)
    python tools/bundle_models.py --checkpoints DIR    # start from trained DIR/sredge_x{2,3,4}.pth
    python tools/bundle_models.py --int8-only          # QAT the shipped FP32 files again, then measure
    python tools/bundle_models.py --measure-only       # re-measure the shipped files, rewrite models.json

Each model is an SESR-style network (``sr-train --arch sesr``): collapsible linear blocks trained
over-parameterized and folded by ``sr-export`` into a plain stack of 16-channel convolutions. It is
trained on T91 (ground truth, L1; at x2 also distilled from the VDSR checkpoint) with one thread, so a
seed reproduces it; its INT8 file is made by quantization-aware training (``sr-train --qat --flavour trt
--weight-bits 7``: symmetric int8 with weights within 64, the FP32 model's output as the target) from the
exported FP32 file, validated on the
bundled sample photos (not on Set5/Set14, where it is measured). The figures come from one ``sr-bench`` run per
scale: the public FSRCNN checkpoint of that scale (the latency reference), the FP32 model and its INT8
file, on ONNX Runtime and OpenVINO (when installed), Set5 and Set14, Y channel, crop = scale.

Assets: ../shared/assets (T91, Set5, Set14, the FSRCNN checkpoints); see docs/sr-models.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from sredge.environment import describe_cpu

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
OUT = ROOT / "src" / "sredge" / "data" / "models"
BUILD = ROOT / "build" / "bundled"

BODY = {2: (9, 24000), 3: (9, 24000), 4: (11, 20000)}
"""Per scale: body convolutions and training steps (the latency budget allows 9 at x2/x3, 11 at x4)."""
DISTIL = (2,)
"""Scales trained with the VDSR teacher besides the ground truth (``--teacher-mode ground-truth``)."""
QAT_STEPS = {2: 2000, 3: 2000, 4: 2000}
QAT_FLAVOUR = "trt"
"""Symmetric int8 with Q/DQ on convolution inputs: OpenVINO's (and TensorRT's) native INT8, 2-3x the FP32
speed on OpenVINO here, where the cpu flavour's asymmetric activations reached 1.3-1.9x; ONNX Runtime runs
neither flavour of these 16-channel networks faster than FP32."""
QAT_WEIGHT_BITS = 7
"""Weights within 64: on x86 CPUs without VNNI, OpenVINO sums pairs of u8 x s8 products in 16 bits, which
saturate with full-range weights (OpenVINO on emulated AVX2: the x2 file's Set5 drop 0.112 dB with
8-bit weights, 0.076 with 7-bit; with VNNI both exact). After QAT they cost 0.002 dB at x2 (0.075 vs 0.073)."""


def train_command(scale: int, out: Path) -> list[str]:
    """The documented, reproducible training command of the bundled x{scale} model."""
    convs, steps = BODY[scale]
    return ["sr-train", "--arch", "sesr", "--scale", str(scale), "--feats", "16", "--convs", str(convs),
            "--data", str(ASSETS / "calibration" / "T91"), "--val", str(ASSETS / "benchmarks" / "Set5"),
            *(["--teacher", str(ASSETS / "weights" / "vdsr" / "vdsr_model_epoch_50.pth"), "--trust-pickle",
                "--teacher-mode", "ground-truth"] if scale in DISTIL else []),
            "--steps", str(steps), "--lr", "1e-3", "--val-every", "1000", "--threads", "1", "--seed", "0",
            "-o", str(out)]


def qat_command(scale: int, fp32: Path, out: Path) -> list[str]:
    """The QAT command of the bundled INT8 file (:data:`QAT_FLAVOUR`; the target is the FP32 model's output)."""
    return ["sr-train", "--qat", str(fp32), "--flavour", QAT_FLAVOUR, "--weight-bits", str(QAT_WEIGHT_BITS),
            "--data", str(ASSETS / "calibration" / "T91"),
            "--val", "sample", "--steps", str(QAT_STEPS[scale]), "--threads", "1", "--seed", "0", "-o", str(out)]


def _run(cmd: list[str]) -> None:
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / cmd[0]), *cmd[1:]], check=True)


def _shown(cmd: list[str]) -> str:
    """A command as run from the project root (the folder the README's commands start in)."""
    return " ".join(os.path.relpath(c, ROOT) if os.path.isabs(c) else c for c in cmd)


def bench(models: list[Path], dataset: str, scale: int, latency: bool, backends: str) -> dict:
    """One sr-bench run; its JSON rows keyed by label."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        _run(["sr-bench", *map(str, models), "--dataset", str(ASSETS / "benchmarks" / dataset), "--scale", str(scale),
              "--tile", "0", "--backend", backends, "--size", "640x360" if latency else "0", "--repeats", "7",
              "--threads", "0", "--json", str(out), "-q"])
        report = json.loads(out.read_text())
    return {r["label"]: r for r in report["rows"]}


def network_speed(fp32: Path, int8: Path, backend: str, size: tuple[int, int] = (360, 640), rounds: int = 9) -> float:
    """FP32 time / INT8 time of the bare networks on one LR frame's network input (the bundled photo's Y: no colour
    conversion, no chroma upscale, which sr-bench's frame times include, the same for both files), median of
    interleaved rounds. Real content, not noise: ONNX Runtime's PReLU takes a third longer on noise."""
    import numpy as np

    from sredge.models.onnx_file import read_descriptor
    from sredge.runtime.backends import open_backend
    from sredge.runtime.timing import sample_input, time_interleaved

    x = sample_input(read_descriptor(fp32), *size)
    with open_backend(backend, fp32) as f, open_backend(backend, int8) as q:
        times = time_interleaved({"f": lambda: f.run(x), "q": lambda: q.run(x)}, warmup=2, rounds=rounds)
    return round(float(np.median(times["f"]) / np.median(times["q"])), 2)


def measure(scale: int, fp32: Path, int8: Path, fsrcnn: Path) -> dict:
    """The models.json entry of one scale, measured here."""
    import onnx

    from sredge.calibration.quantize import quantized_nodes
    from sredge.models.onnx_file import read_descriptor

    try:
        import openvino  # noqa: F401

        backends = "ort,openvino"
    except ImportError:
        backends = "ort"
    rows5 = bench([fsrcnn, fp32, int8], "Set5", scale, latency=True, backends=backends)
    rows14 = bench([fp32, int8], "Set14", scale, latency=False, backends="ort")
    ref, f, q = (f"{p.name[:-5]} [ort]" for p in (fsrcnn, fp32, int8))
    def psnr(rows: dict, label: str, digits: int | None = 3) -> float:
        row = rows.get(label) or rows[label.removesuffix(" [ort]")]  # one backend: no suffix
        value = row["quality"]["mean"]["psnr"]
        return value if digits is None else round(value, digits)

    def drop(rows: dict) -> float:  # from the measured figures, not from two rounded ones
        return round(psnr(rows, f, None) - psnr(rows, q, None), 3)

    ms = lambda label: round(rows5[label]["latency"]["median_ms"], 1)  # noqa: E731
    desc = read_descriptor(fp32)
    int8_model = onnx.load(str(int8))
    convs = sum(n.op_type == "Conv" for n in int8_model.graph.node)
    int8_speed = {"ort": round(ms(f) / ms(q), 2)}
    int8_psnr_by_backend = {"ort": psnr(rows5, q)}
    network = {b: network_speed(fp32, int8, b) for b in backends.split(",")}
    if "openvino" in backends:
        int8_speed["openvino"] = round(ms(f"{fp32.name[:-5]} [openvino]") / ms(f"{int8.name[:-5]} [openvino]"), 2)
        int8_psnr_by_backend["openvino"] = psnr(rows5, f"{int8.name[:-5]} [openvino]")
    return {
        "scale": scale, "file": fp32.name, "variant": desc.variant, "arch": desc.arch, "params": desc.num_params,
        "set5_y_psnr": psnr(rows5, f), "set14_y_psnr": psnr(rows14, f),
        "set5_y_psnr_per_image": {k: round(v["psnr"], 3) for k, v in rows5[f]["quality"]["images"].items()},
        "set5_bicubic": psnr(rows5, "bicubic"), "set14_bicubic": psnr(rows14, "bicubic"),
        "cpu_ms_640x360": ms(f), "cpu_fps_640x360": round(1e3 / ms(f), 2),
        "reference": {"model": f"FSRCNN x{scale}, the public checkpoint ({fsrcnn.name})",
                      "set5_y_psnr": psnr(rows5, ref), "cpu_ms_640x360": ms(ref),
                      "latency_ratio": round(ms(f) / ms(ref), 3)},
        "int8": {"file": int8.name, "flavour": read_descriptor(int8).precision.removeprefix("int8-"),
                 "set5_y_psnr": psnr(rows5, q), "set14_y_psnr": psnr(rows14, q),
                 "set5_y_psnr_by_backend": int8_psnr_by_backend,
                 "set5_drop": drop(rows5), "set14_drop": drop(rows14),
                 "convs_in_int8": len(quantized_nodes(int8_model)), "convs": convs,
                 "speed_vs_fp32": int8_speed, "network_speed_vs_fp32": network},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", type=Path, help="folder with trained sredge_x{s}.pth (skip training)")
    ap.add_argument("--int8-only", action="store_true",
                    help="make the INT8 files again from the shipped FP32 files (QAT), then measure")
    ap.add_argument("--measure-only", action="store_true", help="measure the shipped files; train and export nothing")
    ap.add_argument("--scales", default="2,3,4", help="scales to make (default 2,3,4)")
    args = ap.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    ckdir = args.checkpoints or BUILD
    BUILD.mkdir(parents=True, exist_ok=True)
    old = {m["scale"]: m for m in json.loads((OUT / "models.json").read_text())["models"]} \
        if (OUT / "models.json").exists() else {}
    entries = dict(old)
    for s in scales:
        ckpt, fp32, int8 = ckdir / f"sredge_x{s}.pth", OUT / f"sredge_x{s}.onnx", OUT / f"sredge_x{s}.int8.onnx"
        train, qat = train_command(s, ckpt), qat_command(s, fp32, int8)
        if not args.measure_only:
            if not args.int8_only:
                if args.checkpoints is None:
                    _run(train)
                _run(["sr-export", str(ckpt), "-o", str(fp32), "--overwrite", "-q"])
            _run([*qat, "--overwrite", "-q"])
        fsrcnn = BUILD / f"fsrcnn_x{s}.onnx"
        if not fsrcnn.exists():
            _run(["sr-export", str(ASSETS / "weights" / "fsrcnn" / f"fsrcnn_x{s}.pth"), "--scale", str(s),
                  "-o", str(fsrcnn), "-q"])
        m = measure(s, fp32, int8, fsrcnn)
        m["train_command"], m["qat_command"] = _shown(train), _shown(qat)
        m["measured_on"] = f"{date.today().isoformat()}, {describe_cpu()}, one sr-bench run per scale"
        entries[s] = m
        print(json.dumps(m, indent=2))
    (OUT / "models.json").write_text(json.dumps({"models": [entries[s] for s in sorted(entries)]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
