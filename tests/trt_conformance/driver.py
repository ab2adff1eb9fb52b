"""One conformance run: sredge's TensorRT code against one TensorRT version's real bindings.

Run by ``test_conformance.py`` in a fresh process whose ``LD_LIBRARY_PATH`` holds the stub
libraries and whose ``PYTHONPATH`` holds the real ``tensorrt_bindings`` and cuda-python modules
(``fetch.py``)::

    python -m tests.trt_conformance.driver WORKDIR RESULT.json [--mistakes]

Every scenario gets a fresh checker, simulated TensorRT (``simtrt.py``) and simulated device
(``simcuda.py``) installed as ``sys.modules["tensorrt"]`` and as the cuda-python runtime module,
then drives sredge's real code (``sr-build``'s CLI, ``build_engine``, ``TrtBackend``). A scenario
passes when its assertions hold AND no conformance violation was recorded. The result JSON also
carries ``trt_features()`` of the real module and every API name used.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import shutil
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .models import make_images, make_onnx
from .shadow import ShadowModule
from .simcuda import SimCudaModule, SimDevice
from .simtrt import CACHE_SIG, SIM_CALIBRATION_TABLE, SimLog, install, new_world

CUDA_NAMES = ("cuda.bindings.runtime", "cuda.cudart")


def real_modules() -> tuple[Any, Any, str]:
    import tensorrt_bindings

    for name in CUDA_NAMES:
        try:
            return tensorrt_bindings, importlib.import_module(name), name
        except ImportError:
            continue
    raise ImportError("no cuda-python runtime module on PYTHONPATH")


@dataclass
class Ctx:
    """What a scenario gets."""

    trt: Any
    """The shadow ``tensorrt`` module (installed in sys.modules)."""
    cuda: SimCudaModule
    dev: SimDevice
    log: SimLog
    work: Path
    major: int

    def sr_build(self, *argv: str) -> tuple[int, str, str]:
        from sredge.cli import build
        from sredge.cli._app import run

        out, err = io.StringIO(), io.StringIO()
        logging.root.handlers.clear()  # run() configures logging on the redirected stderr
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run("sr-build", build.main, list(argv))
        return code, out.getvalue(), err.getvalue()


_installed: dict[str, Any] = {}


def fresh(real_trt: Any, real_cuda: Any, cuda_name: str, work: Path, dla_cores: int = 0,
          devices: int = 1) -> tuple[Ctx, Any]:
    world, checker = new_world(real_trt)
    dev = SimDevice(count=devices)
    log = install(world, dev, dla_cores)
    shadow = ShadowModule(world)
    sim = SimCudaModule(real_cuda, dev, cuda_name)
    sys.modules["tensorrt"] = shadow
    sys.modules[cuda_name] = sim
    major = int(str(real_trt.__version__).split(".")[0])
    return Ctx(shadow, sim, dev, log, work, major), checker


# --------------------------------------------------------------------------- scenarios (correct use)

SCENARIOS: dict[str, Callable[[Ctx], None]] = {}


def scenario(fn: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
    SCENARIOS[fn.__name__] = fn
    return fn


def _engine(ctx: Ctx, name: str) -> Path:
    return ctx.work / f"{name}.engine"


@scenario
def build_fp32(ctx: Ctx) -> None:
    onnx = make_onnx(ctx.work / "m32.onnx")
    code, out, err = ctx.sr_build(str(onnx), "-o", str(_engine(ctx, "m32")), "--tile", "64", "--max-tile", "128",
                                  "--timing-cache", str(ctx.work / "tc_fp32.cache"), "--workspace", "256")
    assert code == 0, err
    assert _engine(ctx, "m32").is_file() and Path(str(_engine(ctx, "m32")) + ".json").is_file()
    assert (ctx.work / "tc_fp32.cache").read_bytes().startswith(CACHE_SIG)
    typed_bit = 1 << int(ctx.trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) \
        if ctx.major == 10 else 0
    assert ctx.log.network_flags == [typed_bit], ctx.log.network_flags
    assert ctx.log.profiles == [((1, 1, 16, 16), (1, 1, 64, 64), (1, 1, 128, 128))], ctx.log.profiles
    assert "TF32" not in ctx.log.builder_flags[0]
    code, out, err = ctx.sr_build(str(onnx), "-o", str(_engine(ctx, "m32")), "--tile", "64", "--max-tile", "128",
                                  "--timing-cache", str(ctx.work / "tc_fp32.cache"), "--workspace", "256")
    assert code == 0 and "up to date" in out and ctx.log.engines_built == 1, (code, out, err)


@scenario
def parse_failure_is_exit_1_naming_the_errors(ctx: Ctx) -> None:
    onnx = make_onnx(ctx.work / "bad.onnx", unsupported_op=True)
    code, out, err = ctx.sr_build(str(onnx), "-o", str(_engine(ctx, "bad")), "--timing-cache", str(ctx.work / "t.c"))
    assert code == 1 and "could not parse" in err and "NoSuchOp" in err and not _engine(ctx, "bad").exists(), err


@scenario
def build_fp16_onnx_strongly_typed(ctx: Ctx) -> None:
    onnx = make_onnx(ctx.work / "m16.onnx", "fp16")
    code, out, err = ctx.sr_build(str(onnx), "-o", str(_engine(ctx, "m16")), "--timing-cache", str(ctx.work / "t.c"))
    assert code == 0, err
    assert "strongly typed" in out and not ctx.log.builder_flags[0] & {"FP16", "INT8"}


@scenario
def build_qdq_onnx_strongly_typed(ctx: Ctx) -> None:
    onnx = make_onnx(ctx.work / "mq.onnx", "int8")
    code, out, err = ctx.sr_build(str(onnx), "-o", str(_engine(ctx, "mq")), "--timing-cache", str(ctx.work / "t.c"))
    assert code == 0, err
    assert "Q/DQ" in out and "strongly typed" in out


@scenario
def fp16_flag_on_a_float_onnx(ctx: Ctx) -> None:
    onnx = make_onnx(ctx.work / "m32.onnx")
    code, out, err = ctx.sr_build(str(onnx), "--fp16", "-o", str(_engine(ctx, "f")), "--timing-cache",
                                  str(ctx.work / "t.c"))
    if ctx.major == 10:
        assert code == 0 and ctx.log.builder_flags[0] >= {"FP16"} and ctx.log.network_flags == [0], (code, err)
    else:
        assert code == 2 and "strongly typed" in err and not _engine(ctx, "f").exists(), (code, err)


@scenario
def int8_calibration_of_a_float_onnx(ctx: Ctx) -> None:
    onnx = make_onnx(ctx.work / "m32.onnx", channels=3)
    calib = make_images(ctx.work / "calib")
    cache = ctx.work / "m.calib"
    args = [str(onnx), "--int8", "--calib", str(calib), "--calib-cache", str(cache), "--tile", "64", "--batch", "2",
            "-o", str(_engine(ctx, "i8")), "--timing-cache", str(ctx.work / "t.c")]
    code, out, err = ctx.sr_build(*args)
    if ctx.major == 10:
        assert code == 0, err
        assert ctx.log.calib_batches == 2 and cache.read_bytes() == SIM_CALIBRATION_TABLE
        # with the cache alone, calibration is read, not re-run
        code, out, err = ctx.sr_build(str(onnx), "--int8", "--calib-cache", str(cache), "--tile", "64",
                                      "--batch", "2", "-o", str(_engine(ctx, "i8b")), "--timing-cache",
                                      str(ctx.work / "t.c"))
        assert code == 0 and "calibration cache read" in ctx.log.notes, (code, err, ctx.log.notes)
    else:
        assert code == 2 and "strongly typed" in err, (code, err)


@scenario
def a_damaged_calibration_image_fails_the_build(ctx: Ctx) -> None:
    """TensorRT's bindings swallow an exception raised in get_batch and end calibration there: the build
    succeeded on part of --calib. The calibrator keeps the error and sr-build raises it; and a folder with
    fewer images than one batch is refused before TensorRT (it would fail with no scales)."""
    onnx = make_onnx(ctx.work / "m32.onnx", channels=3)
    calib = make_images(ctx.work / "calib")
    (calib / "zz_damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not the rest of a PNG")
    engine = _engine(ctx, "i8bad")
    code, out, err = ctx.sr_build(str(onnx), "--int8", "--calib", str(calib), "--tile", "64", "--batch", "2",
                                  "-o", str(engine), "--timing-cache", str(ctx.work / "t.c"))
    if ctx.major == 10:
        assert code == 2 and "zz_damaged.png" in err and not engine.exists(), (code, err)
        assert ctx.log.calib_batches == 2, ctx.log.calib_batches  # the two batches before the damaged image
    few = make_images(ctx.work / "few", count=3)
    code, out, err = ctx.sr_build(str(onnx), "--int8", "--calib", str(few), "--tile", "64", "--batch", "1:4:4",
                                  "-o", str(engine), "--timing-cache", str(ctx.work / "t.c"))
    assert code == 2 and "3 images, but calibration runs whole batches of 4" in err and not engine.exists(), err


@scenario
def int8_calibration_of_an_fp16_input_onnx(ctx: Ctx) -> None:
    """Defect 4: float32 batches were copied into a HALF input. Which type TensorRT wants there is not
    documented, and NVIDIA calibrates float32 networks (NVIDIA/TensorRT#4196), so an FP16 ONNX is now
    refused before TensorRT, naming the FP32 export with --int8 --fp16 instead."""
    onnx = make_onnx(ctx.work / "m16.onnx", "fp16", channels=3)
    calib = make_images(ctx.work / "calib")
    code, out, err = ctx.sr_build(str(onnx), "--int8", "--calib", str(calib), "--tile", "48", "-o",
                                  str(_engine(ctx, "h8")), "--timing-cache", str(ctx.work / "t.c"))
    assert code == 2 and "calibrates a float32 ONNX" in err and "--fp16" in err, (code, err)
    assert ctx.log.calib_batches == 0 and not ctx.log.network_flags and not _engine(ctx, "h8").exists()


@scenario
def a_calibration_cache_of_another_tensorrt(ctx: Ctx) -> None:
    """The review: TensorRT skips a calibration cache another version wrote and asks for batches; with
    --calib-cache alone there are none, and the engine would be built without scales. sr-build stops,
    naming the cache's TensorRT and --calib, and writes no engine."""
    if ctx.major != 10:
        return
    onnx = make_onnx(ctx.work / "m32.onnx", channels=3)
    cache = ctx.work / "old.calib"
    cache.write_bytes(b"TRT-8601-EntropyCalibration2\ninput: 3c010204\n")
    engine = _engine(ctx, "old")
    code, out, err = ctx.sr_build(str(onnx), "--int8", "--calib-cache", str(cache), "--tile", "64", "--batch", "2",
                                  "-o", str(engine), "--timing-cache", str(ctx.work / "t.c"))
    assert code == 2 and "calibration cache skipped" in ctx.log.notes, (code, err, ctx.log.notes)
    assert "did not take --calib-cache" in err and "TensorRT 8.6.1" in err and "--calib DIR" in err, err
    assert not engine.exists() and cache.read_bytes().startswith(b"TRT-8601-"), err
    # calibrating again with the images rewrites the cache for this TensorRT
    code, out, err = ctx.sr_build(str(onnx), "--int8", "--calib", str(make_images(ctx.work / "c")), "--calib-cache",
                                  str(cache), "--tile", "64", "--batch", "2", "-o", str(engine), "--timing-cache",
                                  str(ctx.work / "t.c"))
    assert code == 0 and engine.is_file() and cache.read_bytes() == SIM_CALIBRATION_TABLE, (code, err)


@scenario
def int8_calibration_of_a_fixed_non_square_onnx(ctx: Ctx) -> None:
    """Defect 3: a fixed 128x96 input got square 128x128 calibration batches."""
    if ctx.major != 10:
        return
    onnx = make_onnx(ctx.work / "fixed.onnx", hw=(128, 96), channels=3)
    calib = make_images(ctx.work / "calib")
    code, out, err = ctx.sr_build(str(onnx), "--int8", "--calib", str(calib), "-o", str(_engine(ctx, "fx")),
                                  "--timing-cache", str(ctx.work / "t.c"))
    assert code == 0, err
    assert ctx.log.calib_batches == 4 and ctx.log.profiles[0][1] == (1, 3, 128, 96)


@scenario
def dla_static_profile_and_layer_report(ctx: Ctx) -> None:
    """Defect 2: DLA builds got a dynamic profile and all layers silently ran on the GPU."""
    ctx.dev.name = "Orin"
    onnx = make_onnx(ctx.work / "m16.onnx", "fp16")
    code, out, err = ctx.sr_build(str(onnx), "--dla-core", "0", "--tile", "96", "-o", str(_engine(ctx, "dla")),
                                  "--timing-cache", str(ctx.work / "t.c"))
    assert code == 0, err
    assert ctx.log.profiles == [((1, 1, 96, 96),) * 3], ctx.log.profiles
    if ctx.major == 10:  # the documented DLA recipe of TensorRT 10: weakly typed, FP16 by flag
        assert ctx.log.network_flags == [0] and ctx.log.builder_flags[0] >= {"FP16"}, ctx.log
    else:
        assert not ctx.log.builder_flags[0] & {"FP16", "INT8"}, ctx.log
    assert not any("fell back" in n for n in ctx.log.notes), ctx.log.notes
    assert "1 of 2 layers on the DLA, 1 on the GPU" in out, out
    sidecar = json.loads(Path(str(_engine(ctx, "dla")) + ".json").read_text())
    assert sidecar["dla_layers"] == {"on_dla": 1, "total": 2} and sidecar["dla_core"] == 0
    from sredge.runtime.backends.trt import TrtBackend

    with TrtBackend(_engine(ctx, "dla")) as be:  # the runtime loads it for the core it was built for
        assert be._runtime.DLA_core == 0
        x = np.random.default_rng(2).random((1, 1, 96, 96), dtype=np.float32)
        np.testing.assert_allclose(be.run(x), _expected(x.astype(np.float16), 2), atol=1e-3)
    code, out, err = ctx.sr_build(str(onnx), "--dla-core", "0", "--tile", "96", "--max-tile", "256", "-o",
                                  str(_engine(ctx, "d2")))
    assert code == 2 and "one input shape" in err, (code, err)
    qdq = make_onnx(ctx.work / "mq.onnx", "int8")  # the DLA quantizes by calibration only (NVIDIA/TensorRT#2222)
    code, out, err = ctx.sr_build(str(qdq), "--dla-core", "0", "--tile", "96", "-o", str(_engine(ctx, "dq")))
    assert code == 2 and "not from a Q/DQ ONNX" in err and not _engine(ctx, "dq").exists(), (code, err)


@scenario
def foreign_timing_cache_is_replaced_not_fatal(ctx: Ctx) -> None:
    """Defect 1: a cache from another GPU made set_timing_cache fail; get_timing_cache() was None and the
    engine was lost (exit 3)."""
    onnx = make_onnx(ctx.work / "m32.onnx")
    for name, content, extra in (("foreign", CACHE_SIG + b"NVIDIA GeForce RTX 4090|tactics", []),
                                 ("corrupt", b"\x00garbage", ["--overwrite"])):
        tc = ctx.work / f"{name}.cache"
        tc.write_bytes(content)
        engine = _engine(ctx, name)
        code, out, err = ctx.sr_build(str(onnx), "-o", str(engine), "--timing-cache", str(tc), *extra)
        assert code == 0, (name, err)
        assert engine.is_file() and Path(str(engine) + ".json").is_file()
        assert "timing cache" in err and ("another TensorRT" in err or "corrupt" in err), err
        assert tc.read_bytes().startswith(CACHE_SIG + ctx.dev.name.encode()), tc.read_bytes()[:40]


@scenario
def a_file_that_is_no_cache_is_not_replaced(ctx: Ctx) -> None:
    """The audit: an existing file named as --timing-cache (notes.txt) or, with --calib, as --calib-cache
    (an sr-calibrate .npz) would have been replaced by the build's cache without --overwrite."""
    onnx = make_onnx(ctx.work / "m32.onnx")
    notes = ctx.work / "notes.txt"
    notes.write_bytes(b"my notes\n")
    engine = _engine(ctx, "notes")
    code, out, err = ctx.sr_build(str(onnx), "-o", str(engine), "--timing-cache", str(notes))
    assert code == 0 and engine.is_file(), err
    assert "left as it is" in err and notes.read_bytes() == b"my notes\n", err
    if ctx.major == 10:
        calib_set = ctx.work / "set.npz"
        calib_set.write_bytes(b"PK\x03\x04 an sr-calibrate set")
        m3 = make_onnx(ctx.work / "m3.onnx", channels=3)
        args = [str(m3), "--int8", "--calib", str(make_images(ctx.work / "c")), "--calib-cache", str(calib_set),
                "--tile", "64", "--batch", "2", "-o", str(_engine(ctx, "c"))]
        code, out, err = ctx.sr_build(*args)
        assert code == 2 and "exists" in err and "--overwrite" in err, (code, err)
        assert calib_set.read_bytes() == b"PK\x03\x04 an sr-calibrate set" and not _engine(ctx, "c").exists()
        code, out, err = ctx.sr_build(str(m3), "--int8", "--calib-cache", str(calib_set),
                                      "--tile", "64", "--batch", "2", "-o", str(_engine(ctx, "c2")))
        assert code == 2 and "not a TensorRT calibration cache" in err, (code, err)


@scenario
def no_gpu_is_a_cuda_message_not_an_internal_error(ctx: Ctx) -> None:
    """Defect 5: trt.Builder was created before the device check (nullptr TypeError: exit 3)."""
    ctx.dev.count = 0
    onnx = make_onnx(ctx.work / "m32.onnx")
    code, out, err = ctx.sr_build(str(onnx), "-o", str(_engine(ctx, "none")))
    assert code == 2 and "no usable NVIDIA GPU" in err and err.count("\n") == 1, (code, err)
    assert not _engine(ctx, "none").exists()


def _expected(x: np.ndarray, s: int) -> np.ndarray:
    return x.repeat(s, axis=2).repeat(s, axis=3)


@scenario
def runtime_runs_engines_with_pinned_overlapped_copies(ctx: Ctx) -> None:
    from sredge.runtime.backends.trt import TrtBackend

    for precision in ("fp32", "fp16"):
        onnx = make_onnx(ctx.work / f"r_{precision}.onnx", precision, channels=3)
        engine = _engine(ctx, f"r_{precision}")
        code, out, err = ctx.sr_build(str(onnx), "-o", str(engine), "--tile", "32", "--max-tile", "64",
                                      "--batch", "1:2:4", "--timing-cache", str(ctx.work / "t.c"))
        assert code == 0, err
        rng = np.random.default_rng(1)
        batches = [rng.random((n, 3, h, w), dtype=np.float32) for n, h, w in
                   ((2, 32, 32), (2, 32, 32), (1, 48, 40), (4, 64, 64), (3, 16, 16))]
        ctx.dev.copies.clear()
        with TrtBackend(engine) as be:
            spec = be.input_spec()
            assert spec.max_batch == 4 and spec.max_hw == (64, 64) and spec.min_hw == (16, 16)
            assert be.descriptor().scale == 2
            outs = list(be.run_many(iter(batches)))
            one = be.run(batches[0])
            tol = 0 if precision == "fp32" else 1e-3
            for x, y in zip(batches + [batches[0]], outs + [one]):
                want = _expected(x.astype(np.float16) if precision == "fp16" else x, 2).astype(np.float32)
                assert y.dtype == np.float32 and y.shape == want.shape
                np.testing.assert_allclose(y, want, atol=tol)
            copies = [c for c in ctx.dev.copies if c.asynchronous]
            assert copies and all(c.host_pinned for c in copies), copies
            # buffers are reused: the same or a smaller batch allocates nothing new
            allocated = [buf.allocations for slot in be._slots for buf in slot.buffers()]
            be.run(batches[3])
            be.run(batches[4])
            assert [buf.allocations for slot in be._slots for buf in slot.buffers()] == allocated
            # stopping early leaves nothing in flight
            gen = be.run_many(iter(batches))
            next(gen)
            gen.close()
            assert all(not q for q in ctx.dev.queues.values())
            assert "pinned" in be.describe()
        assert not ctx.dev.pinned and not ctx.dev.allocations and not ctx.dev.queues, "resources leaked"


@scenario
def an_engine_whose_smallest_batch_is_above_one_runs_any_batch(ctx: Ctx) -> None:
    """A profile of batch 2..4 (a DLA engine's is n:n:n) refused every call of 1 item, sr-run's default,
    and a tiler's smaller last group: such batches are filled with copies of their last item."""
    from sredge.runtime.backends.trt import TrtBackend

    onnx = make_onnx(ctx.work / "b2.onnx", channels=3)
    engine = _engine(ctx, "b2")
    code, out, err = ctx.sr_build(str(onnx), "-o", str(engine), "--tile", "32", "--max-tile", "32",
                                  "--batch", "2:2:4", "--timing-cache", str(ctx.work / "t.c"))
    assert code == 0, err
    rng = np.random.default_rng(3)
    batches = [rng.random((n, 3, 32, 32), dtype=np.float32) for n in (1, 3, 1, 4, 2)]
    with TrtBackend(engine) as be:
        assert not be.input_spec().batch_fixed and be.input_spec().max_batch == 4
        outs = list(be.run_many(iter(batches))) + [be.run(batches[0])]
        for x, y in zip(batches + [batches[0]], outs):
            np.testing.assert_array_equal(y, _expected(x, 2))
    assert not ctx.dev.pinned and not ctx.dev.allocations and not ctx.dev.queues, "resources leaked"


@scenario
def sr_run_upscales_an_image_through_a_tiled_engine(ctx: Ctx) -> None:
    """sr-run end to end on an engine: runner, tiler (run_many), backend, simulated device."""
    import cv2

    from sredge.cli import run as sr_run
    from sredge.cli._app import run

    onnx = make_onnx(ctx.work / "rgb.onnx", channels=3)
    engine = _engine(ctx, "rgb")
    code, out, err = ctx.sr_build(str(onnx), "-o", str(engine), "--tile", "48", "--min-tile", "16",
                                  "--max-tile", "64", "--batch", "1:2:4", "--timing-cache", str(ctx.work / "t.c"))
    assert code == 0, err
    rng = np.random.default_rng(3)
    img = (rng.random((100, 90, 3)) * 255).astype(np.uint8)
    src, dst = ctx.work / "in.png", ctx.work / "out.png"
    cv2.imwrite(str(src), img)
    so, se = io.StringIO(), io.StringIO()
    logging.root.handlers.clear()
    with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
        code = run("sr-run", sr_run.main, ["--image", str(src), "--model", str(engine), "--tile", "48",
                                           "--batch", "2", "-o", str(dst), "-q"])
    assert code == 0, se.getvalue()
    got = cv2.imread(str(dst))
    assert np.array_equal(got, img.repeat(2, axis=0).repeat(2, axis=1)), "output differs from the engine's result"
    assert ctx.log.executions >= 4  # tiled: several engine runs
    assert all(c.host_pinned for c in ctx.dev.copies if c.asynchronous)


def _sr_run(ctx: Ctx, *argv: str) -> tuple[int, str]:
    from sredge.cli import run as sr_run
    from sredge.cli._app import run

    so, se = io.StringIO(), io.StringIO()
    logging.root.handlers.clear()
    with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
        code = run("sr-run", sr_run.main, list(argv))
    return code, se.getvalue()


@scenario
def sr_run_fits_its_tiles_to_the_engine_profile(ctx: Ctx) -> None:
    """The TensorRT audit: a one-shape (DLA-style) engine got tiles of 66x90 for a 100x90 image, an engine whose
    profile starts at 64 got 62x55 tiles, and --tile auto (from --memory-budget) above the engine's largest
    tile was refused as if the user had given it: each exit 2 with no way round."""
    import cv2

    onnx = make_onnx(ctx.work / "rgb.onnx", channels=3)
    rng = np.random.default_rng(5)
    for name, flags, image_hw, run_flags in (
            ("one", ["--tile", "96", "--min-tile", "96"], (100, 90), ["--tile", "96"]),
            ("min64", ["--tile", "64", "--min-tile", "64", "--max-tile", "128"], (150, 100), ["--tile", "64"]),
            ("auto", ["--tile", "64", "--max-tile", "64"], (300, 300), ["--memory-budget", "64"])):
        engine = _engine(ctx, name)
        code, out, err = ctx.sr_build(str(onnx), "-o", str(engine), *flags, "--timing-cache", str(ctx.work / "t.c"))
        assert code == 0, (name, err)
        img = (rng.random((*image_hw, 3)) * 255).astype(np.uint8)
        src, dst = ctx.work / f"{name}.png", ctx.work / f"{name}_x2.png"
        cv2.imwrite(str(src), img)
        code, err = _sr_run(ctx, "--image", str(src), "--model", str(engine), *run_flags, "-o", str(dst), "-q")
        assert code == 0, (name, err)
        assert np.array_equal(cv2.imread(str(dst)), img.repeat(2, axis=0).repeat(2, axis=1)), name


@scenario
def a_stopped_or_damaged_build_is_rebuilt_and_never_run(ctx: Ctx) -> None:
    """The TensorRT audit: a damaged sidecar made --overwrite fail with 'rebuild the engine'; an engine left without
    its sidecar by a stop between the two writes needed --overwrite and ran unchecked; a --calib-cache named for an
    up-to-date engine was never written; weights in an external-data file were not in the cache key."""
    from sredge.errors import InputError
    from sredge.export.engine_build import UNFINISHED_SIDECAR
    from sredge.runtime.backends.trt import TrtBackend, write_engine_sidecar

    onnx = make_onnx(ctx.work / "m.onnx")
    engine, sidecar = _engine(ctx, "m"), Path(str(_engine(ctx, "m")) + ".json")
    args = [str(onnx), "-o", str(engine), "--tile", "32", "--timing-cache", str(ctx.work / "t.c")]
    assert ctx.sr_build(*args)[0] == 0 and ctx.log.engines_built == 1
    sidecar.write_text("{ truncated")
    code, out, err = ctx.sr_build(*args, "--overwrite")
    assert code == 0 and ctx.log.engines_built == 2, (code, err)
    write_engine_sidecar(engine, None, UNFINISHED_SIDECAR)  # what a stop between the engine and its sidecar leaves
    try:
        with TrtBackend(engine):
            raise AssertionError("an unfinished build ran")
    except InputError as exc:
        assert "sr-build stopped while writing it" in str(exc), exc
    code, out, err = ctx.sr_build(*args)  # sr-build's own: no --overwrite needed
    assert code == 0 and ctx.log.engines_built == 3, (code, err)
    if ctx.major == 10:  # implicit calibration is TensorRT 10's
        rgb = make_onnx(ctx.work / "rgb.onnx", channels=3)
        calib = make_images(ctx.work / "calib")
        i8 = [str(rgb), "--int8", "--calib", str(calib), "--tile", "64", "-o", str(_engine(ctx, "i8")),
              "--timing-cache", str(ctx.work / "t.c")]
        assert ctx.sr_build(*i8)[0] == 0
        cache = ctx.work / "new.calib"
        code, out, err = ctx.sr_build(*i8, "--calib-cache", str(cache))
        assert code == 0 and cache.read_bytes() == SIM_CALIBRATION_TABLE, (code, out, err)
    import onnx as onnx_lib

    model = onnx_lib.load(str(onnx))
    ext = ctx.work / "ext.onnx"
    onnx_lib.save(model, str(ext), save_as_external_data=True, all_tensors_to_one_file=True, location="ext.onnx.data",
                  size_threshold=0)
    eargs = [str(ext), "-o", str(_engine(ctx, "ext")), "--tile", "32", "--timing-cache", str(ctx.work / "t.c")]
    built = ctx.log.engines_built
    assert ctx.sr_build(*eargs)[0] == 0 and ctx.log.engines_built == built + 1
    data = bytearray((ctx.work / "ext.onnx.data").read_bytes())
    data[:4] = bytes(4)
    (ctx.work / "ext.onnx.data").write_bytes(bytes(data))
    code, out, err = ctx.sr_build(*eargs)
    assert code == 0 and "up to date" not in out and ctx.log.engines_built == built + 2, (code, out, err)


@scenario
def runtime_refuses_what_the_engine_cannot_take(ctx: Ctx) -> None:
    from sredge.errors import InputError
    from sredge.runtime.backends.trt import TrtBackend

    onnx = make_onnx(ctx.work / "m32.onnx")
    engine = _engine(ctx, "small")
    code, out, err = ctx.sr_build(str(onnx), "-o", str(engine), "--tile", "32", "--timing-cache", str(ctx.work / "t"))
    assert code == 0, err
    with TrtBackend(engine) as be:
        try:
            be.run(np.zeros((1, 1, 40, 40), np.float32))
        except InputError as exc:
            assert "outside the engine's profile" in str(exc)
        else:
            raise AssertionError("a tile outside the profile ran")
    vectorized = _engine(ctx, "hwc8")  # an engine built with allowed_formats: its input is not dense NCHW
    desc = json.loads(engine.read_bytes())
    desc["input"]["format"] = "HWC8"
    vectorized.write_bytes(json.dumps(desc).encode())
    shutil.copy(str(engine) + ".json", str(vectorized) + ".json")
    try:
        with TrtBackend(vectorized):
            pass
    except InputError as exc:
        assert "has the HWC8 layout" in str(exc), exc
    else:
        raise AssertionError("an engine with a vectorized input was taken as NCHW")
    ctx.dev.name = "Other GPU"
    try:
        with TrtBackend(engine):
            pass
    except InputError as exc:
        assert "rebuild it here with sr-build" in str(exc)
    else:
        raise AssertionError("an engine built for another GPU ran")


@scenario
def runtime_without_gpu(ctx: Ctx) -> None:
    from sredge.runtime.backends.trt import CudaError, TrtBackend

    onnx = make_onnx(ctx.work / "m32.onnx")
    engine = _engine(ctx, "nogpu")
    assert ctx.sr_build(str(onnx), "-o", str(engine), "--timing-cache", str(ctx.work / "t"))[0] == 0
    ctx.dev.count = 0
    try:
        with TrtBackend(engine):
            pass
    except CudaError as exc:
        assert "no CUDA device" in str(exc) or "GPU" in str(exc)
    else:
        raise AssertionError("TrtBackend opened without a GPU")


# --------------------------------------------------------------------------- injected mistakes

MISTAKES: dict[str, Callable[[Ctx], None]] = {}
"""Each does one thing wrong; the run asserts the conformance check catches every one."""


class NotApplicable(Exception):
    """The mistake is valid API in this version (e.g. EXPLICIT_BATCH still exists, deprecated, in 10)."""


def mistake(fn: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
    MISTAKES[fn.__name__] = fn
    return fn


def _builder(ctx: Ctx) -> Any:
    from sredge.runtime.backends.trt import _trt_logger

    return ctx.trt.Builder(_trt_logger(ctx.trt))


@mistake
def tensorrt8_only_attribute(ctx: Ctx) -> None:
    config = _builder(ctx).create_builder_config()
    config.max_workspace_size = 1 << 30  # TensorRT 8 only


@mistake
def tensorrt8_only_method(ctx: Ctx) -> None:
    _builder(ctx).build_engine(None, None)  # removed in TensorRT 10


@mistake
def explicit_batch_flag(ctx: Ctx) -> None:
    if ctx.major == 10:
        raise NotApplicable("EXPLICIT_BATCH exists, deprecated, in TensorRT 10")
    flag = ctx.trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH  # gone in 11
    _builder(ctx).create_network(1 << int(flag))


@mistake
def fp16_flag_on_tensorrt_11(ctx: Ctx) -> None:
    if ctx.major == 10:
        raise NotApplicable("BuilderFlag.FP16 exists in TensorRT 10")
    config = _builder(ctx).create_builder_config()
    config.set_flag(ctx.trt.BuilderFlag.FP16)  # gone in 11


@mistake
def write_to_read_only_property(ctx: Ctx) -> None:
    _builder(ctx).num_DLA_cores = 2


@mistake
def call_matching_no_overload(ctx: Ctx) -> None:
    profile = _builder(ctx).create_optimization_profile()
    profile.set_shape("input", (1, 3, 16, 16), (1, 3, 64, 64))  # max shape missing


@mistake
def wrong_argument_type(ctx: Ctx) -> None:
    _builder(ctx).create_builder_config().set_timing_cache(b"raw bytes", False)  # needs an ITimingCache


@mistake
def execute_async_v2_removed_in_tensorrt_10(ctx: Ctx) -> None:
    from .shadow import ShadowObject

    context = ShadowObject(ctx.trt.IExecutionContext, ctx.trt.__dict__["_world"])
    context.execute_async_v2([0, 0], 0)  # TensorRT 8's binding-index API


@mistake
def swapped_memcpy_arguments(ctx: Ctx) -> None:
    c = ctx.cuda
    _, dev = c.cudaMalloc(64)
    host = np.zeros(16, np.float32)
    _, stream = c.cudaStreamCreate()
    c.cudaMemcpyAsync(host.ctypes.data, dev, 64, c.cudaMemcpyKind.cudaMemcpyHostToDevice, stream)  # dst/src swapped
    c.cudaStreamSynchronize(stream)


@mistake
def memcpy_missing_the_stream(ctx: Ctx) -> None:
    c = ctx.cuda
    _, dev = c.cudaMalloc(64)
    host = np.zeros(16, np.float32)
    c.cudaMemcpyAsync(dev, host.ctypes.data, 64, c.cudaMemcpyKind.cudaMemcpyHostToDevice)


@mistake
def memcpy_kind_as_a_plain_int(ctx: Ctx) -> None:
    c = ctx.cuda
    _, dev = c.cudaMalloc(64)
    host = np.zeros(16, np.float32)
    c.cudaMemcpy(dev, host.ctypes.data, 64, 1)


@mistake
def reading_output_before_synchronizing(ctx: Ctx) -> None:
    c = ctx.cuda
    _, dev = c.cudaMalloc(64)
    _, pinned = c.cudaMallocHost(64)
    _, stream = c.cudaStreamCreate()
    arr = np.frombuffer((np.ctypeslib.ctypes.c_uint8 * 64).from_address(pinned), np.uint8)
    arr[:] = 7
    c.cudaMemcpyAsync(dev, pinned, 64, c.cudaMemcpyKind.cudaMemcpyHostToDevice, stream)
    arr[:] = 0  # reused before the copy ran
    back = np.ones(64, np.uint8)
    c.cudaMemcpy(back.ctypes.data, dev, 64, c.cudaMemcpyKind.cudaMemcpyDeviceToHost)
    assert (back == 7).all(), "CAUGHT: the pinned buffer was overwritten before its asynchronous copy ran"


# --------------------------------------------------------------------------- runner


def run_all(work: Path, mistakes: bool) -> dict:
    from sredge.export.engine_build import trt_features

    real_trt, real_cuda, cuda_name = real_modules()
    result: dict[str, Any] = {"tensorrt": real_trt.__version__, "cuda_module": cuda_name,
                              "features": sorted(trt_features(real_trt)), "scenarios": {}, "mistakes": {},
                              "used": set(), "cuda_used": set()}
    table = MISTAKES if mistakes else SCENARIOS
    for name, fn in table.items():
        case = work / name
        case.mkdir(parents=True, exist_ok=True)
        ctx, checker = fresh(real_trt, real_cuda, cuda_name, case, dla_cores=1)
        error = None
        try:
            fn(ctx)
        except NotApplicable as exc:
            result["mistakes"][name] = {"caught": None, "how": [str(exc)]}
            continue
        except Exception as exc:  # a scenario's failure, or (for mistakes) the expected catch
            error = f"{type(exc).__name__}: {exc}"
            if not mistakes:
                error += "\n" + traceback.format_exc(limit=8)
        violations = checker.violations + ctx.dev.violations
        if mistakes:
            caught = bool(violations) or (error is not None and "AttributeError" in error) or \
                (error is not None and "CAUGHT" in error)
            result["mistakes"][name] = {"caught": caught, "how": violations[:1] or [error]}
        else:
            result["scenarios"][name] = {"ok": error is None and not violations, "error": error,
                                         "violations": violations}
            result["used"] |= checker.used
            result["cuda_used"] |= ctx.cuda.__dict__["used"]
    result["used"] = sorted(result["used"])
    result["cuda_used"] = sorted(result["cuda_used"])
    return result


def main() -> None:
    work, out = Path(sys.argv[1]), Path(sys.argv[2])
    mistakes = "--mistakes" in sys.argv
    if "--real" in sys.argv:
        from .real_run import run_real

        out.write_text(json.dumps(run_real(work)))
        return
    out.write_text(json.dumps(run_all(work, mistakes)))


if __name__ == "__main__":
    main()
