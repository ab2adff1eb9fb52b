"""The GPU check: run it on any machine with an NVIDIA GPU (``make gpu-check``), in about a minute.

1. **PyTorch on CUDA**: each real checkpoint below runs through sredge's torch backend on the GPU in
   float32 and float16, on Set5 (the LR images of its scale); every output image is compared with the
   CPU float32 golden output of the same backend: Y-PSNR (BT.601, 8-bit, ``scale`` pixels cropped)
   must be >= 50 dB.
2. **sr-run on the GPU**: ``sr-run`` on Set5 and on the first frames of a real video (lossless FFV1),
   tiled (``--tile 48 --batch 2``), through PyTorch on CUDA (float32, float16) and through the TensorRT
   backend (``TrtBackend`` unchanged: its pinned buffers, three streams, events and double-buffering)
   whose engine is a stand-in (``tools/gpu_trt_standin.py``) that runs the same network with PyTorch
   on the stream and at the device addresses the backend hands it; plain, with a GPU busy-wait before
   each execution, and with float16 I/O. Every image and decoded frame is compared with
   ``sr-run --device cpu``'s (Y-PSNR >= 50 dB). A control run drops the backend's stream waits
   (busy-wait on): its images must come out wrong, which shows the comparison sees an ordering error.
3. **cuda-python buffers**: the buffer path alone (page-locked host buffers, device buffers, three
   streams ordered by events, double-buffered) round-trips batches of several shapes through the
   GPU, a device-to-device copy standing in for the engine; every byte must come back.
4. **Overlap** (a figure): ``TrtBackend.run_many`` against ``run`` one batch at a time.
5. **sr-train on CUDA**: ``sr-train --device cuda`` (SRVGG x2 from scratch; ``--qat`` of the real FSRCNN x3)
   against the same command with ``--device cpu``: same seed, data and steps; the validation results must
   agree within 0.2 dB, and the files must load on the CPU and run on ONNX Runtime.

TensorRT itself is not needed (nor exercised). Writes a JSON report; exit 0 when every check passes,
1 when one fails, 2 when the machine cannot run it (no CUDA). ``--device cpu`` runs part 1 against
the CPU itself (a smoke test of the script, not a GPU check)::

    PYTHONPATH=src python tools/gpu_check.py --assets ../shared/assets --report gpu_check.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import tempfile
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


SR_RUN_MODELS = {
    # name: video frames to run (the CPU reference runs them too)
    "fsrcnn_x3": 12,
    "realesr_animevideov3_x4": 4,
}
SR_RUN_TILING = ["--tile", "48", "--batch", "2", "--tile-overlap", "8"]
SR_RUN_VIDEO = "video/onepiece_demo.mp4"
STANDIN_PROFILE = ((1, 8, 8), (2, 64, 64), (4, 128, 128))
"""(batch, height, width) of the stand-in engine's optimization profile: min, opt, max."""
DELAY_CYCLES = 4_000_000
"""GPU busy-wait before each stand-in execution (about 2 ms at the H100/H200's clock)."""


def check_sr_run(assets: Path, names: list[str], work: Path) -> list[dict]:
    """Part 2: sr-run on the GPU (torch on CUDA, the TensorRT backend with a stand-in engine) vs sr-run on the CPU.

    Set5 images and the first frames of a real video (lossless FFV1 output, so every decoded frame can be
    compared); the video runs through sr-run's threaded pipeline, the GPU work on its inference thread.
    """
    import gpu_trt_standin
    import torch

    from sredge.cli.run import main as sr_run
    from sredge.models.loader import load_model
    from sredge.runtime.backends import trt as trt_backend

    torch.backends.cudnn.allow_tf32 = False  # float32 means float32 on both sides of the comparison
    torch.backends.cuda.matmul.allow_tf32 = False
    major, minor = torch.cuda.get_device_capability(0)
    built_for = {"tensorrt_version": gpu_trt_standin.__version__, "gpu_name": torch.cuda.get_device_name(0),
                 "compute_capability": f"{major}.{minor}"}
    video = assets / SR_RUN_VIDEO
    rows = []
    for name in names:
        rel, scale, load = CHECKPOINTS[name]
        ckpt = assets / "weights" / rel
        out = work / name
        out.mkdir(parents=True, exist_ok=True)
        desc = load_model(ckpt, **load).descriptor
        engines = {}
        for label, io, delay in (("float32", "FLOAT", 0), ("float32-busy", "FLOAT", DELAY_CYCLES),
                                 ("float16", "HALF", 0)):
            engine = out / f"{name}.{label}.engine"
            profile = tuple((n, desc.in_channels, h, w) for n, h, w in STANDIN_PROFILE)
            gpu_trt_standin.write_engine(engine, ckpt, load, (desc.in_channels, desc.out_channels), scale, profile,
                                         io=io, delay_cycles=delay)
            trt_backend.write_engine_sidecar(engine, desc, built_for)
            engines[label] = engine
        variants = [
            ("torch-cuda-fp32", ["--model", str(ckpt), "--backend", "torch", "--device", "cuda"], False),
            ("torch-cuda-fp16", ["--model", str(ckpt), "--backend", "torch", "--device", "cuda", "--fp16"], False),
            *((f"trt-standin-{label}", ["--model", str(e), "--backend", "trt"], False) for label, e in engines.items()),
            ("control-no-stream-waits", ["--model", str(engines["float32-busy"]), "--backend", "trt"], True),
        ]
        inputs = [("images", ["--image", str(assets / "benchmarks" / "Set5" / "LR_bicubic" / f"X{scale}")], "")]
        if video.is_file():
            inputs.append(("video", ["--video", str(video), "--frames", str(SR_RUN_MODELS[name]), "--codec", "ffv1"],
                           ".mkv"))
        for kind, source, suffix in inputs:
            flags = [*source, *SR_RUN_TILING, "-q"]
            reference = out / f"{kind}-cpu{suffix}"
            sr_run([*flags, "--model", str(ckpt), "--backend", "torch", "--device", "cpu", "-o", str(reference)])
            for label, args, control in variants:
                if kind == "video" and label not in ("torch-cuda-fp32", "trt-standin-float32-busy"):
                    continue
                row: dict = {"model": name, "input": kind, "variant": label, "control": control}
                t0 = time.perf_counter()
                try:
                    with _standin_tensorrt(gpu_trt_standin), _without_stream_waits(trt_backend, control):
                        sr_run([*flags, *args, "-o", str(out / f"{kind}-{label}{suffix}")])
                    psnrs = _compare(reference, out / f"{kind}-{label}{suffix}", scale)
                    worst = min(psnrs.values())
                    row.update(y_psnr_vs_cpu=psnrs, min_y_psnr=worst)
                    row["ok"] = bool(worst < MIN_PSNR) if control else bool(worst >= MIN_PSNR)
                except Exception as exc:  # report it, fail the run
                    row.update(ok=False, error=f"{type(exc).__name__}: {exc}")
                row["seconds"] = round(time.perf_counter() - t0, 2)
                rows.append(row)
    return rows


def measure_overlap(assets: Path, work: Path, batches: int = 40) -> dict:
    """Part 4 (a figure, not a pass/fail check): TrtBackend.run_many, which overlaps the copies of one batch
    with the stand-in engine's compute of another, against run() one batch at a time, on the same backend."""
    import gpu_trt_standin
    import numpy as np
    import torch

    from sredge.runtime.backends import open_backend
    from sredge.runtime.backends.base import BackendOptions

    rel, scale, load = CHECKPOINTS["realesr_animevideov3_x4"]
    shape = (4, 3, 128, 128)
    engine = gpu_trt_standin.write_engine(work / "overlap.engine", assets / "weights" / rel, load, (3, 3), scale,
                                          ((1, 3, 8, 8), shape, shape))
    xs = [np.random.default_rng(i).random(shape, dtype=np.float32) for i in range(batches)]
    timings: dict[str, list[float]] = {"run_many": [], "run": []}
    with _standin_tensorrt(gpu_trt_standin), open_backend("trt", engine, BackendOptions(device="cuda")) as be:
        for _ in range(3):  # alternate, so that clocks and caches treat both alike
            t0 = time.perf_counter()
            many = list(be.run_many(xs))
            timings["run_many"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            one = [be.run(x) for x in xs]
            timings["run"].append(time.perf_counter() - t0)
        same = all(np.array_equal(a, b) for a, b in zip(many, one))
    best = {k: min(v) / batches * 1e3 for k, v in timings.items()}
    return {"engine": "stand-in realesr_animevideov3_x4 (PyTorch on CUDA)", "batch_shape": list(shape),
            "batches": batches, "ms_per_batch_run_many": round(best["run_many"], 3),
            "ms_per_batch_run": round(best["run"], 3), "run_over_run_many": round(best["run"] / best["run_many"], 3),
            "outputs_equal": same, "torch": torch.__version__}


TRAIN_STEPS = 400
"""Steps of each sr-train run in part 5 (the same on the CPU and on CUDA)."""
MAX_TRAIN_GAP_DB = 0.2
"""Part 5: CUDA's validation PSNR after TRAIN_STEPS may differ from the CPU's by this much (float summation order
differs, and 400 Adam steps carry it along); a device bug (a tensor left behind, a wrong copy) costs far more."""


def check_sr_train(assets: Path, work: Path) -> list[dict]:
    """Part 5: ``sr-train --device cuda`` (SRVGG x2 from scratch, and ``--qat`` of the real FSRCNN x3) against
    the same command on the CPU: the same seed, data and steps must end within MAX_TRAIN_GAP_DB on the
    validation photos, and the files must load on the CPU (checkpoint) and run on ONNX Runtime (INT8)."""
    from sredge.cli.train import main as sr_train
    from sredge.models.loader import load_model
    from sredge.models.onnx_file import read_descriptor

    ckpt = assets / "weights" / "fsrcnn" / "fsrcnn_x3.pth"
    common = ["--data", "sample", "--val", "sample", "--steps", str(TRAIN_STEPS), "--seed", "0", "-q"]
    runs = {
        "srvgg x2 from scratch": (["--arch", "srvgg", "--scale", "2", "--val-every", str(TRAIN_STEPS // 2)], ".pth"),
        "fsrcnn_x3 --qat --flavour trt": (["--qat", str(ckpt), "--flavour", "trt", "--val-every",
                                           str(TRAIN_STEPS // 4)], ".int8.onnx"),
    }
    rows = []
    for label, (args, suffix) in runs.items():
        row: dict = {"run": label, "steps": TRAIN_STEPS}
        try:
            got = {}
            for device in ("cpu", "cuda"):
                out = work / f"train-{device}-{len(rows)}{suffix}"
                t0 = time.perf_counter()
                code = sr_train([*common, *args, "--device", device, "-o", str(out)])
                row[f"{device}_seconds"] = round(time.perf_counter() - t0, 1)
                if code != 0:
                    raise RuntimeError(f"sr-train --device {device} exited {code}")
                if suffix == ".pth":
                    import torch

                    got[device] = float(torch.load(out, map_location="cpu", weights_only=True)["val_psnr"])
                    load_model(out)  # sr-export's loader, on the CPU
                else:
                    got[device] = -float(read_descriptor(out).psnr_drop_db)  # higher is better, as for PSNR
                    _run_on_ort(out)
            key = "val_y_psnr" if suffix == ".pth" else "minus_int8_drop_db"
            row.update({f"{key}_cpu": got["cpu"], f"{key}_cuda": got["cuda"]})
            row["ok"] = bool(abs(got["cuda"] - got["cpu"]) <= MAX_TRAIN_GAP_DB)
        except Exception as exc:  # report it, fail the run
            row.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        rows.append(row)
    return rows


def _run_on_ort(path: Path) -> None:
    import numpy as np

    from sredge.runtime.backends import open_backend
    from sredge.runtime.backends.base import BackendOptions

    with open_backend("ort", path, BackendOptions(device="cpu")) as be:
        y = be.run(np.random.default_rng(0).random((1, 1, 24, 24), dtype=np.float32))
    if not np.isfinite(y).all():
        raise ValueError(f"{path.name} gave non-finite outputs on ONNX Runtime")


def _compare(reference: Path, result: Path, scale: int) -> dict[str, float]:
    """Y-PSNR of each image (a folder) or each decoded frame (a video) of ``result`` against ``reference``."""
    from sredge.imaging.io import read_rgb, to_float
    from sredge.imaging.metrics import y_psnr

    if reference.is_dir():
        return {f.name: y_psnr(to_float(read_rgb(result / f.name)), to_float(read_rgb(f)), scale)
                for f in sorted(reference.iterdir())}
    import av

    def frames(path: Path) -> list:
        with av.open(str(path)) as container:
            return [to_float(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]

    ref, got = frames(reference), frames(result)
    if len(ref) != len(got) or not ref:
        raise ValueError(f"{result.name} has {len(got)} frames, the CPU reference {len(ref)}")
    return {f"frame {i}": y_psnr(g, r, scale) for i, (g, r) in enumerate(zip(got, ref))}


@contextlib.contextmanager
def _standin_tensorrt(module):
    """``import tensorrt`` gives the stand-in while the block runs."""
    saved = sys.modules.get("tensorrt")
    sys.modules["tensorrt"] = module
    try:
        yield
    finally:
        if saved is None:
            del sys.modules["tensorrt"]
        else:
            sys.modules["tensorrt"] = saved


@contextlib.contextmanager
def _without_stream_waits(trt_backend, active: bool):
    """The control: TrtBackend's cudaStreamWaitEvent calls do nothing while the block runs."""
    if not active:
        yield
        return
    real = trt_backend.import_cuda_runtime

    class NoWaits:
        def __init__(self, rt):
            self._rt = rt

        def __getattr__(self, attr):
            if attr == "cudaStreamWaitEvent":
                return lambda *args: (self._rt.cudaError_t.cudaSuccess,)
            return getattr(self._rt, attr)

    trt_backend.import_cuda_runtime = lambda: NoWaits(real())
    try:
        yield
    finally:
        trt_backend.import_cuda_runtime = real


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
        with tempfile.TemporaryDirectory(prefix="gpu_check_") as work:
            report["sr_run_checks"] = check_sr_run(args.assets, [n for n in names if n in SR_RUN_MODELS], Path(work))
            report["sr_train_checks"] = check_sr_train(args.assets, Path(work))
            try:
                report["overlap"] = measure_overlap(args.assets, Path(work))
            except Exception as exc:  # a figure: report why it is missing
                report["overlap"] = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            report["cuda_buffers"] = check_cuda_buffers()
        except Exception as exc:  # report it, fail the run
            report["cuda_buffers"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    else:
        report["cuda_buffers"] = {"skipped": "--device cpu"}
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    failed = [r for r in report["torch_checks"] + report.get("sr_run_checks", []) + report.get("sr_train_checks", [])
              if r.get("ok") is False]
    if report["cuda_buffers"].get("ok") is False:
        failed.append(report["cuda_buffers"])
    for r in report["torch_checks"]:
        if "skipped" in r:
            print(f"{r['model']:<26} skipped: {r['skipped']}")
        else:
            print(f"{r['model']:<26} {r['precision']}  min Y-PSNR vs CPU {r['min_y_psnr']:.2f} dB  "
                  f"{'ok' if r['ok'] else 'FAIL'}  ({r['backend']})")
    for r in report.get("sr_run_checks", []):
        got = r.get("error") or f"min Y-PSNR vs CPU {r['min_y_psnr']:.2f} dB"
        print(f"sr-run {r['model']:<24} {r['input']:<6} {r['variant']:<28} {got}  {'ok' if r['ok'] else 'FAIL'}")
    for r in report.get("sr_train_checks", []):
        print(f"sr-train {r['run']:<32} {json.dumps({k: v for k, v in r.items() if k not in ('run', 'ok')})}  "
              f"{'ok' if r['ok'] else 'FAIL'}")
    if "overlap" in report:
        print(f"overlap                    {json.dumps(report['overlap'])}")
    cb = report["cuda_buffers"]
    print(f"cuda buffers               {json.dumps(cb)}")
    print(f"report: {args.report}; {'FAILED' if failed else 'all checks passed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
