"""The prepared GPU check: run it on any machine with an NVIDIA GPU (``make gpu-check``), in under 5 minutes.

1. **PyTorch on CUDA**: each real checkpoint below runs through sredge's torch backend on the GPU in
   float32 and float16, on Set5 (the LR images of its scale); every output image is compared with the
   CPU float32 golden output of the same backend: Y-PSNR (BT.601, 8-bit, ``scale`` pixels cropped)
   must be >= 50 dB.
2. **cuda-python buffers**: the TensorRT backend's buffer path (page-locked host buffers, device
   buffers, three streams ordered by events, double-buffered) round-trips batches of several shapes
   through the GPU, a device-to-device copy standing in for the engine; every byte must come back.

TensorRT itself is not needed (nor exercised). Writes a JSON report; exit 0 when every check passes,
1 when one fails, 2 when the machine cannot run it (no CUDA). ``--device cpu`` runs part 1 against
the CPU itself (a smoke test of the script, not a GPU check)::

    PYTHONPATH=src python tools/gpu_check.py --assets ../shared/assets --report gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

CHECKPOINTS = {
    # name: (path under weights/, scale, load options)
    "fsrcnn_x3": ("fsrcnn/fsrcnn_x3.pth", 3, {}),
    "espcn_x3": ("espcn/espcn_x3.pt", 3, {}),
    "vdsr_x3": ("vdsr/vdsr_model_epoch_50.pth", 3, {"trust_pickle": True, "scale": 3}),
    "realesr_animevideov3_x4": ("srvgg/realesr-animevideov3.pth", 4, {}),
}
MIN_PSNR = 50.0


def check_torch(assets: Path, device: str, names: list[str], images: int) -> list[dict]:
    from sredge.imaging.io import read_rgb, to_float
    from sredge.imaging.metrics import y_psnr
    from sredge.imaging.model_io import image_to_input, output_to_image
    from sredge.runtime.backends.base import BackendOptions
    from sredge.runtime.backends.torch_backend import TorchBackend

    rows = []
    for name in names:
        rel, scale, load = CHECKPOINTS[name]
        ckpt = assets / "weights" / rel
        lr_dir = assets / "benchmarks" / "Set5" / "LR_bicubic" / f"X{scale}"
        files = sorted(lr_dir.glob("*.png"))[:images]
        if not ckpt.is_file() or not files:
            rows.append({"model": name, "skipped": f"missing {ckpt} or {lr_dir}"})
            continue
        inputs = [to_float(read_rgb(f)) for f in files]
        with TorchBackend(ckpt, BackendOptions(device="cpu"), **load) as cpu:
            desc = cpu.descriptor()
            golden = [output_to_image(cpu.run(image_to_input(img, desc)), desc) for img in inputs]
        for fp16 in (False, True) if device == "cuda" else (False,):  # torch's float16 path is CUDA only
            t0 = time.perf_counter()
            with TorchBackend(ckpt, BackendOptions(device=device, fp16=fp16), **load) as be:
                outs = [output_to_image(be.run(image_to_input(img, desc)), desc) for img in inputs]
                where = be.describe()
            psnrs = [y_psnr(o, g, scale) for o, g in zip(outs, golden)]
            worst = min(psnrs)
            rows.append({"model": name, "precision": "fp16" if fp16 else "fp32", "backend": where,
                         "images": [f.name for f in files], "y_psnr_vs_cpu": psnrs, "min_y_psnr": worst,
                         "ok": bool(worst >= MIN_PSNR), "seconds": round(time.perf_counter() - t0, 2)})
    return rows


def check_cuda_buffers() -> dict:
    """Round-trip batches through the double-buffered pinned/device pipeline the TensorRT backend uses."""
    from sredge.runtime.backends.cuda_rt import DeviceBuffer, PinnedBuffer, cuda_value, current_gpu, import_cuda_runtime

    cudart = import_cuda_runtime()
    gpu = current_gpu(cudart, "the buffer check needs an NVIDIA GPU")
    streams = {r: cuda_value(cudart.cudaStreamCreate(), "cudaStreamCreate") for r in ("up", "compute", "down")}
    flags = cudart.cudaEventDisableTiming
    slots = []
    for i in range(2):
        slots.append({"hin": PinnedBuffer(cudart, f"in{i}"), "hout": PinnedBuffer(cudart, f"out{i}"),
                      "din": DeviceBuffer(cudart, f"din{i}"), "dout": DeviceBuffer(cudart, f"dout{i}"),
                      "ev": {e: cuda_value(cudart.cudaEventCreateWithFlags(flags), "cudaEventCreateWithFlags")
                             for e in ("up", "computed", "down")}, "busy": None})
    h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
    d2d = cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice
    rng = np.random.default_rng(0)
    shapes = [(2, 3, 256, 256), (2, 3, 256, 256), (1, 3, 200, 120), (4, 1, 512, 512), (3, 3, 64, 64), (1, 3, 17, 33)]
    batches = [rng.random(s, dtype=np.float32) for s in shapes]
    results: list[np.ndarray] = []
    pending: list[dict] = []

    def collect(slot: dict) -> None:
        cuda_value(cudart.cudaEventSynchronize(slot["ev"]["down"]), "cudaEventSynchronize")
        shape = slot["busy"]
        results.append(slot["hout"].view(shape, np.float32).copy())
        slot["busy"] = None

    t0 = time.perf_counter()
    for k, x in enumerate(batches):
        slot = slots[k % 2]
        if slot["busy"] is not None:
            collect(pending.pop(0))
        n = x.nbytes
        for key in ("hin", "hout", "din", "dout"):
            slot[key].ensure(n)
        np.copyto(slot["hin"].view(x.shape, np.float32), x)
        ev = slot["ev"]
        cuda_value(cudart.cudaStreamWaitEvent(streams["up"], ev["computed"], 0), "cudaStreamWaitEvent")
        cuda_value(cudart.cudaMemcpyAsync(slot["din"].ptr, slot["hin"].ptr, n, h2d, streams["up"]), "H2D")
        cuda_value(cudart.cudaEventRecord(ev["up"], streams["up"]), "cudaEventRecord")
        cuda_value(cudart.cudaStreamWaitEvent(streams["compute"], ev["up"], 0), "cudaStreamWaitEvent")
        cuda_value(cudart.cudaStreamWaitEvent(streams["compute"], ev["down"], 0), "cudaStreamWaitEvent")
        cuda_value(cudart.cudaMemcpyAsync(slot["dout"].ptr, slot["din"].ptr, n, d2d, streams["compute"]), "D2D")
        cuda_value(cudart.cudaEventRecord(ev["computed"], streams["compute"]), "cudaEventRecord")
        cuda_value(cudart.cudaStreamWaitEvent(streams["down"], ev["computed"], 0), "cudaStreamWaitEvent")
        cuda_value(cudart.cudaMemcpyAsync(slot["hout"].ptr, slot["dout"].ptr, n, d2h, streams["down"]), "D2H")
        cuda_value(cudart.cudaEventRecord(ev["down"], streams["down"]), "cudaEventRecord")
        slot["busy"] = x.shape
        pending.append(slot)
    while pending:
        collect(pending.pop(0))
    seconds = time.perf_counter() - t0
    equal = [bool(np.array_equal(a, b)) for a, b in zip(batches, results)]
    for s in streams.values():
        cuda_value(cudart.cudaStreamDestroy(s), "cudaStreamDestroy")
    for slot in slots:
        for key in ("hin", "hout", "din", "dout"):
            slot[key].free()
        for e in slot["ev"].values():
            cuda_value(cudart.cudaEventDestroy(e), "cudaEventDestroy")
    return {"gpu": gpu.name, "compute_capability": gpu.compute_capability, "module": cudart.module.__name__,
            "batches": len(batches), "round_trips_equal": equal, "ok": all(equal) and len(results) == len(batches),
            "seconds": round(seconds, 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--assets", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "assets")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--models", default=",".join(CHECKPOINTS), help="comma-separated: " + ", ".join(CHECKPOINTS))
    p.add_argument("--images", type=int, default=5, help="Set5 images per model (default all 5)")
    p.add_argument("--report", type=Path, default=Path("gpu_check.json"))
    args = p.parse_args(argv)
    names = [n for n in args.models.split(",") if n]
    unknown = sorted(set(names) - set(CHECKPOINTS))
    if unknown:
        print(f"gpu_check: unknown models {unknown}", file=sys.stderr)
        return 2
    report: dict = {"python": platform.python_version(), "device": args.device}
    try:
        import torch

        report["torch"] = torch.__version__
        report["cuda_available"] = bool(torch.cuda.is_available())
        if args.device == "cuda" and not torch.cuda.is_available():
            print("gpu_check: PyTorch sees no CUDA device; run it on a GPU machine (or --device cpu)", file=sys.stderr)
            return 2
        if torch.cuda.is_available():
            report["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        print('gpu_check: torch is not installed: pip install "sredge[export]"', file=sys.stderr)
        return 2
    report["torch_checks"] = check_torch(args.assets, args.device, names, args.images)
    if args.device == "cuda":
        try:
            report["cuda_buffers"] = check_cuda_buffers()
        except Exception as exc:  # report it, fail the run
            report["cuda_buffers"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    else:
        report["cuda_buffers"] = {"skipped": "--device cpu"}
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    failed = [r for r in report["torch_checks"] if r.get("ok") is False]
    if report["cuda_buffers"].get("ok") is False:
        failed.append(report["cuda_buffers"])
    for r in report["torch_checks"]:
        if "skipped" in r:
            print(f"{r['model']:<26} skipped: {r['skipped']}")
        else:
            print(f"{r['model']:<26} {r['precision']}  min Y-PSNR vs CPU {r['min_y_psnr']:.2f} dB  "
                  f"{'ok' if r['ok'] else 'FAIL'}  ({r['backend']})")
    cb = report["cuda_buffers"]
    print(f"cuda buffers               {json.dumps(cb)}")
    print(f"report: {args.report}; {'FAILED' if failed else 'all checks passed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
