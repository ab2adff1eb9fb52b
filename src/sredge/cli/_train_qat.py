"""``sr-train --qat MODEL``: quantization-aware fine-tuning of an FP32 model into a Q/DQ INT8 file."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from sredge.cli._progress import StepProgress
from sredge.errors import InputError

PROG = "sr-train"

QAT_DEFAULTS = {"steps": 2000, "batch": 16, "lr": 1e-4, "val_every": 250}
"""Defaults that differ from training from scratch (fine-tuning: fewer steps, a small learning rate)."""

_TRAINING_ONLY = ("teacher", "teacher_arch", "teacher_mode", "teacher_weight", "feats", "channels", "stop_after",
                  "convs", "expand", "loss")


def check_qat_args(args) -> None:
    """Reject options that mean nothing for ``--qat`` (one line each)."""
    given = [f"--{k.replace('_', '-')}" for k in _TRAINING_ONLY if getattr(args, k, None) is not None]
    if args.arch_given:
        given.insert(0, "--arch")
    if args.resume:
        given.append("--resume")
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        raise InputError(f"--qat fine-tunes the given model; {', '.join(given)} only {verb} to training a new one")
    if args.output.suffix.lower() != ".onnx":
        raise InputError(f"--qat writes an ONNX model: give -o NAME.int8.onnx, not {args.output}")
    if args.flavour is None:
        args.flavour = "cpu"
    if args.qat_target is None:
        args.qat_target = "fp32"


def _target_model(value: str, desc) -> str | None:
    """The ``--qat-target`` model file (None for ``fp32`` / ``ground-truth``), checked to output what the
    FP32 model ``desc`` outputs from the same input: same scale, channels, colour space and value range."""
    if value in ("fp32", "ground-truth"):
        return None
    from sredge.models.onnx_file import read_descriptor

    path = Path(value)
    if not path.is_file() or path.suffix.lower() != ".onnx":
        raise InputError(f"--qat-target {value}: give fp32, ground-truth, or an sredge .onnx model to learn from "
                         "(sr-export makes one from a checkpoint)")
    target = read_descriptor(path)
    if target is None:
        raise InputError(f"--qat-target {path} has no sredge metadata; export it with sr-export")
    if target.pre_upsample:
        raise InputError(f"--qat-target {path} refines a bicubic-upsampled image (pre-upsampling); the target "
                         "must take the same LR input as the model")

    def io(d) -> str:
        return f"x{d.scale}, {d.in_channels} to {d.out_channels} channels, {d.color_space} in [0, {d.value_range:g}]"

    if io(target) != io(desc):
        raise InputError(f"--qat-target {path} ({target.arch}: {io(target)}) does not take and give what the model "
                         f"does ({io(desc)})")
    return str(path)


def _fp32_model(path: Path, scale: int | None, tmp: Path, trust_pickle: bool = False) -> Path:
    """The FP32 ONNX to fine-tune: ``path`` itself, or a checkpoint exported to ``tmp``.

    The model keeps its own scale (its metadata's; a checkpoint's weights, record or file name): a
    ``scale`` that contradicts it is refused. ``scale`` is used only for a checkpoint that tells none.
    """
    from sredge.models.onnx_file import read_descriptor

    if path.suffix.lower() == ".onnx":
        desc = read_descriptor(path)
        if desc is None:
            raise InputError(f"{path} has no sredge metadata; export the checkpoint with sr-export, or give the "
                             "checkpoint itself to --qat")
        if desc.precision != "fp32":
            raise InputError(f"{path} is {desc.precision}; --qat starts from the FP32 model")
        _check_scale(scale, desc.scale, desc.arch, path, "metadata")
        return path
    from sredge.export.onnx_export import export_onnx
    from sredge.models.loader import load_model

    try:
        loaded = load_model(path, trust_pickle=trust_pickle)
    except InputError:
        if scale is None:
            raise
        # weights that do not tell their scale: --scale says it
        loaded = load_model(path, scale=scale, trust_pickle=trust_pickle)
    else:
        _check_scale(scale, loaded.descriptor.scale, loaded.descriptor.arch, path, loaded.scale_source)
    return export_onnx(loaded.module, loaded.descriptor, tmp / "fp32.onnx")


def _check_scale(scale: int | None, own: int, arch: str, path: Path, source: str) -> None:
    if scale is not None and scale != own:
        raise InputError(f"--scale {scale} contradicts {path}, a x{own} {arch} model (told by its {source}); --qat "
                         "fine-tunes a model at its own scale: drop --scale")


def run_qat(args) -> int:
    """Fine-tune ``args.qat`` on ``args.data`` and write the Q/DQ model to the claimed ``args.output``."""
    import numpy as np

    from sredge._lazy import require

    torch = require("torch")
    if args.threads:
        torch.set_num_threads(args.threads)
    from sredge.cli.train import train_device

    device = train_device(args.device)
    from sredge.benchmarks.datasets import load_dataset
    from sredge.calibration.derive import default_validation, record_quality
    from sredge.calibration.quantize import (
        Int8Options,
        calibrate,
        quantize_int8,
        quantized_nodes,
        save_model,
    )
    from sredge.calibration.sensitivity import Validator
    from sredge.models.onnx_file import read_descriptor
    from sredge.train.data import PatchOptions, PatchSampler
    from sredge.train.qat import QatOptions, finetune

    with tempfile.TemporaryDirectory(prefix="sredge-qat-") as tmp:
        fp32 = _fp32_model(args.qat, args.scale if args.scale_given else None, Path(tmp), args.trust_pickle)
        desc = read_descriptor(fp32)
        if desc.pre_upsample:
            raise InputError("--qat takes models that upscale themselves; this one refines a bicubic-upsampled "
                             "image (pre-upsampling)")
        target_model = _target_model(args.qat_target, desc)
        sampler = PatchSampler(args.data, PatchOptions(desc.scale, args.patch, color_space=desc.color_space,
                                                       max_pixels=args.max_pixels), seed=args.seed)
        calib = np.concatenate([sampler.batch(32)[0] for _ in range(4)]) * desc.value_range
        ptq = quantize_int8(fp32, calibrate(fp32, calib, Int8Options(flavour=args.flavour)))
        dataset = load_dataset(args.val, desc.scale) if args.val else default_validation(desc.scale)
        validator = Validator(dataset, desc, threads=args.threads)
        opts = QatOptions(steps=args.steps, batch=args.batch, lr=args.lr, val_every=args.val_every,
                          target="model" if target_model else args.qat_target, target_model=target_model,
                          device=device)
        progress = StepProgress(PROG, opts.steps, enabled=not args.quiet, label="QAT step")
        started: list[float] = []  # when step 1 ended: the rate leaves out the validations before it

        def on_step(step: int, loss: float, val: float | None) -> None:
            now = time.perf_counter()
            if not started:
                started.append(now)
            progress.update(step, loss, val, (step - 1) / (now - started[0]) if step > 1 else 0.0)

        from sredge.cli._signals import exit_code, signal_name, stop_on_signals

        with stop_on_signals() as stopper:  # a stop keeps the best file so far: nothing validated is lost
            result = finetune(fp32, ptq, sampler, validator.mean_db, opts, desc.value_range, args.seed, on_step,
                              stop=stopper.event)
        progress.finish()
        record_quality(result.model, result.drop_db, dataset.name)
        save_model(result.model, args.output)
    layers = len(quantized_nodes(result.model))
    if stopper.signum is not None:
        print(f"{PROG}: interrupted by {signal_name(stopper.signum)} at QAT step {result.steps_done} of {opts.steps}; "
              f"{args.output} holds the best file so far (step {result.best_step}: {result.qat_db:.2f} dB, drop "
              f"{result.drop_db:.2f} dB; QAT does not resume: run again for all {opts.steps} steps)",
              file=sys.stderr)
        return exit_code(stopper.signum)
    if not args.quiet:
        print(f"{PROG}: {dataset.name} Y-PSNR: FP32 {result.fp32_db:.2f} dB, "
              f"post-training INT8 {result.ptq_db:.2f} dB, "
              f"QAT INT8 {result.qat_db:.2f} dB (drop {result.drop_db:.2f} dB; best at step {result.best_step})")
        print(f"wrote {args.output} ({args.flavour} Q/DQ, {layers} convolutions in INT8, none kept in float)")
    return 0
