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

_TRAINING_ONLY = ("teacher", "teacher_arch", "teacher_mode", "teacher_weight", "feats", "channels", "convs",
                  "expand", "loss")


def check_qat_args(args) -> None:
    """Reject options that mean nothing for ``--qat`` (one line each)."""
    given = [f"--{k.replace('_', '-')}" for k in _TRAINING_ONLY if getattr(args, k, None) is not None]
    if args.arch_given:
        given.insert(0, "--arch")
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        raise InputError(f"--qat fine-tunes the given model; {', '.join(given)} only {verb} to training a new one")
    if args.output.suffix.lower() != ".onnx":
        raise InputError(f"--qat writes an ONNX model: give -o NAME.int8.onnx, not {args.output}")
    if args.flavour is None:
        args.flavour = "cpu"
    from sredge.calibration.quantize import Int8Options

    args.weight_bits = 8 if Int8Options(flavour=args.flavour, weight_bits=args.weight_bits).weight_qmax == 127 else 7
    if args.qat_target is None:
        args.qat_target = "fp32"


def _target_model(value: str, desc) -> str | None:
    """The ``--qat-target`` model file (None for ``fp32`` / ``ground-truth``), checked to output what the
    FP32 model ``desc`` outputs from the same input: same scale, channels, colour space and value range."""
    if value in ("fp32", "ground-truth"):
        return None
    from sredge.models.onnx_file import read_descriptor

    path = Path(value)
    if not path.is_file():
        raise InputError(f"--qat-target {value}: give fp32, ground-truth, or a model to learn from (an sredge .onnx "
                         "or a checkpoint) that exists")
    if path.suffix.lower() != ".onnx":
        return None  # a checkpoint: a teacher (see _teacher)
    target = read_descriptor(path)
    if target is None:
        raise InputError(f"--qat-target {path} has no sredge metadata; export it with sr-export")
    if target.pre_upsample:
        raise InputError(f"--qat-target {path} refines a bicubic-upsampled image (pre-upsampling); an .onnx target "
                         "must take the same LR input as the model: give its checkpoint instead (VDSR's too)")

    def io(d) -> str:
        return f"x{d.scale}, {d.in_channels} to {d.out_channels} channels, {d.color_space} in [0, {d.value_range:g}]"

    if io(target) != io(desc):
        raise InputError(f"--qat-target {path} ({target.arch}: {io(target)}) does not take and give what the model "
                         f"does ({io(desc)})")
    return str(path)


def _teacher(value: str, desc, trust_pickle: bool):
    """The ``--qat-target`` checkpoint as a :class:`~sredge.train.teacher.Teacher` for the FP32 model ``desc``
    (None for ``fp32``, ``ground-truth`` or an ``.onnx``): any network sr-export reads, a pre-upsampling one
    (VDSR) too, at the model's scale, run once on each whole training image."""
    if value in ("fp32", "ground-truth") or Path(value).suffix.lower() == ".onnx":
        return None
    from sredge.models.loader import load_model
    from sredge.models.registry import without_rename_hints
    from sredge.train.teacher import Teacher

    try:
        try:
            loaded = load_model(Path(value), trust_pickle=trust_pickle)
        except InputError as exc:
            if "do not tell the scale" not in str(exc):
                raise
            loaded = load_model(Path(value), scale=desc.scale, trust_pickle=trust_pickle)  # VDSR: any scale
        return Teacher(loaded.module, loaded.descriptor, desc.scale, desc.color_space)
    except InputError as exc:
        raise InputError(f"--qat-target {value}: {without_rename_hints(str(exc))}") from exc


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
    from sredge.models.registry import without_rename_hints

    try:
        try:
            loaded = load_model(path, trust_pickle=trust_pickle)
        except InputError:
            if scale is None:
                raise
            # weights that do not tell their scale: --scale says it
            loaded = load_model(path, scale=scale, trust_pickle=trust_pickle)
    except InputError as exc:
        if "--arch" not in str(exc):
            raise
        # detection failed: --qat has no --arch or --key-map; sr-export has both, and --qat takes its .onnx
        raise InputError(f"{without_rename_hints(str(exc))}; --qat takes neither --arch nor --key-map: export the "
                         f"checkpoint with sr-export {path.name} --arch NAME (and --key-map if its keys are renamed) "
                         "and give the .onnx to --qat") from exc
    else:
        _check_scale(scale, loaded.descriptor.scale, loaded.descriptor.arch, path, loaded.scale_source)
    return export_onnx(loaded.module, loaded.descriptor, tmp / "fp32.onnx")


def _check_scale(scale: int | None, own: int, arch: str, path: Path, source: str) -> None:
    if scale is not None and scale != own:
        raise InputError(f"--scale {scale} contradicts {path}, a x{own} {arch} model (told by its {source}); --qat "
                         "fine-tunes a model at its own scale: drop --scale")


def run_options(args) -> dict:
    """The options that define a QAT run, by flag, as resolved: its state records them, and ``--resume`` must
    give the same (``--steps``, ``--stop-after``, ``--val-every``, ``--threads``, ``--device``, ``--max-pixels``
    and ``-q`` may change)."""
    target = args.qat_target if args.qat_target in ("fp32", "ground-truth") else str(Path(args.qat_target).resolve())
    return {"--qat": str(args.qat.resolve()), "--flavour": args.flavour, "--weight-bits": args.weight_bits,
            "--qat-target": target,
            "--data": str(args.data.resolve()), "--val": str(args.val.resolve()) if args.val else None,
            "--patch": args.patch, "--batch": args.batch, "--lr": args.lr, "--seed": args.seed}


def input_digests(args) -> dict[str, str]:
    """sha256 of the model files a QAT run reads, by flag: a resumed run must read the same bytes."""
    from sredge.runtime.segments import file_sha256

    files = {"--qat": args.qat}
    if args.qat_target not in ("fp32", "ground-truth"):
        files["--qat-target"] = Path(args.qat_target)
    return {flag: file_sha256(path) for flag, path in files.items() if path.is_file()}


def refuse_state_in_the_way(state: Path) -> None:
    """Refuse a folder (or another non-file) where ``-o``'s QAT state goes: the user cannot name the state
    otherwise, so "give a file name" would not help."""
    if state.exists() and not state.is_file():
        raise InputError(f"{state} is in the way of -o's QAT state (not a file sredge wrote): move it away, or "
                         "choose another -o")


def check_qat_state(args):
    """Before any work: what ``-o``'s QAT state (``OUT.sredge-qat``) means for this command.

    Returns:
        The run to continue (a :class:`~sredge.train.qat_state.QatRun`; ``--resume`` and a state), None (start
        at step 0), or ``False``: ``--resume`` of a run with nothing left to train up to ``--steps`` /
        ``--stop-after`` (said on stdout); a run stopped at its last step is finished then (its best file
        written to ``-o``, its state removed).

    Raises:
        InputError: A state this command would lose (no ``--resume`` or ``--overwrite``), ``--resume`` of an
            output with no state (a finished run), or a state this command cannot continue (damaged, other
            options or input files).
    """
    from sredge.train.loop import nothing_left_line
    from sredge.train.qat_state import check_qat_resume, read_state, state_path

    state = state_path(args.output)
    if not args.resume:
        if state.exists() and not args.overwrite:
            raise InputError(f"{state} holds a stopped QAT run of {args.output}: --resume continues it, "
                             "--overwrite starts over")
        return None
    if not state.exists():
        if args.output.exists():
            raise InputError(f"--resume {args.output}: there is no QAT run to continue ({state.name} is not beside "
                             "it: a run removes it when it reaches its last step); --overwrite trains it again")
        if not args.quiet:
            print(f"{PROG}: note: {args.output} does not exist yet, so this QAT run starts at step 0; --resume "
                  "continues it from its last validation once it does", file=sys.stderr)
        return None
    run = read_state(state)
    check_qat_resume(run, args.output, run_options(args), input_digests(args), args.steps)
    step = run.checkpoint.step
    finished = step == args.steps  # stopped after its last step, before it removed its state
    line = nothing_left_line(args.output, step, args.steps, args.stop_after, "QAT steps",
                             at_steps=f"; wrote {args.output} (best at step {run.checkpoint.best_step})")
    if line is not None:
        if finished:
            _finish(run, args.output)
        if not args.quiet:
            print(line)
        return False
    planned = run.checkpoint.steps
    if planned != args.steps and not args.quiet:
        how = "stretched" if args.steps > planned else "shortened"
        print(f"{PROG}: --steps {args.steps} (the run planned {planned}): the cosine schedule is {how} to "
              f"{args.steps} steps from step {run.checkpoint.step} on", file=sys.stderr)
    return run


def _save_best(ck, output: Path, quality_ref: str) -> None:
    """Write a checkpoint's best model to ``output`` with its drop against the FP32 model recorded."""
    import onnx

    from sredge.calibration.derive import record_quality
    from sredge.calibration.quantize import save_model

    best = onnx.load_from_string(ck.best)
    record_quality(best, ck.fp32_db - ck.best_db, quality_ref)
    save_model(best, output)


def _finish(run, output: Path) -> None:
    """End a run whose state is at its last step: its best file to ``output``, then the state removed."""
    from sredge.outputs import Output, claim_outputs

    with claim_outputs([Output(output, "-o", updated=True), Output(run.path, "-o's QAT state", updated=True)], [],
                       False):
        _save_best(run.checkpoint, output, run.record.get("quality_ref", ""))
        run.path.unlink(missing_ok=True)


def _teacher_progress(teacher, quiet: bool):
    """``on_image`` of the sampler: with a teacher, a line on stderr while it runs on the training images."""
    if teacher is None or quiet:
        return None

    def on_image(done: int, total: int) -> None:
        end = "\n" if done == total else "\r"
        print(f"{PROG}: teacher targets {done}/{total} images", end=end, file=sys.stderr, flush=True)

    return on_image


def run_qat(args, resumed=None) -> int:
    """Fine-tune ``args.qat`` on ``args.data`` and write the Q/DQ model to the claimed ``args.output``, with its
    state beside it (``OUT.sredge-qat``) at each validation until the last step; ``resumed`` (from
    :func:`check_qat_state`) continues a stopped run."""
    import numpy as np
    import onnx

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
    from sredge.train.qat_state import state_path, write_state

    # --overwrite of a stopped run: its state stays until this run's first validation replaces it, so a start
    # that fails (a wrong option, a stop) loses nothing
    state = state_path(args.output)
    options, digests = run_options(args), input_digests(args)
    with tempfile.TemporaryDirectory(prefix="sredge-qat-") as tmp:
        fp32 = _fp32_model(args.qat, args.scale if args.scale_given else None, Path(tmp), args.trust_pickle)
        desc = read_descriptor(fp32)
        if desc.pre_upsample:
            raise InputError("--qat takes models that upscale themselves; this one refines a bicubic-upsampled "
                             "image (pre-upsampling)")
        target_model = _target_model(args.qat_target, desc)
        teacher = _teacher(args.qat_target, desc, args.trust_pickle)
        if resumed is not None and resumed.record.get("scale") != desc.scale:
            raise InputError(f"--resume {args.output}: the model is x{desc.scale} now, but the run it continues "
                             f"trained x{resumed.record.get('scale')}; give the --scale of the first run")
        sampler = PatchSampler(args.data, PatchOptions(desc.scale, args.patch, color_space=desc.color_space,
                                                       max_pixels=args.max_pixels), seed=args.seed, teacher=teacher,
                               on_image=_teacher_progress(teacher, args.quiet))
        if resumed is None:
            calib = np.concatenate([sampler.batch(32)[0] for _ in range(4)]) * desc.value_range
            ptq = quantize_int8(fp32, calibrate(fp32, calib, Int8Options(flavour=args.flavour,
                                                                         weight_bits=args.weight_bits)))
        else:  # the graph the run trains; the sampler's state comes back with the rest
            ptq = onnx.load_from_string(resumed.checkpoint.ptq)
        dataset = load_dataset(args.val, desc.scale) if args.val else default_validation(desc.scale)
        validator = Validator(dataset, desc, threads=args.threads)
        opts = QatOptions(steps=args.steps, batch=args.batch, lr=args.lr, val_every=args.val_every,
                          target="model" if target_model else "teacher" if teacher else args.qat_target,
                          target_model=target_model,
                          device=device, stop_after=args.stop_after)
        progress = StepProgress(PROG, opts.steps, enabled=not args.quiet, label="QAT step", stop=opts.stop_after)
        started: list[tuple[int, float]] = []  # the first step's end: the rate leaves out the validations before it

        def on_step(step: int, loss: float, val: float | None) -> None:
            now = time.perf_counter()
            if not started:
                started.append((step, now))
            first, t0 = started[0]
            progress.update(step, loss, val, (step - first) / (now - t0) if step > first else 0.0)

        record = {"scale": desc.scale, "quality_ref": dataset.name}
        written: list[int | None] = [None]  # the step whose file -o holds (a resumed run writes it again once)

        def on_checkpoint(ck) -> None:
            """The state, then the best file so far at -o when it changed: each whole, whatever stops the run, and
            -o without a state beside it is a finished run."""
            write_state(state, ck, options, digests, record)
            if ck.best_step != written[0]:
                _save_best(ck, args.output, dataset.name)
                written[0] = ck.best_step

        from sredge.cli._signals import exit_code, signal_name, stop_on_signals

        with stop_on_signals() as stopper:  # a stop ends at a checkpoint: the same command with --resume continues
            result = finetune(fp32, ptq, sampler, validator.mean_db, opts, desc.value_range, args.seed, on_step,
                              stop=stopper.event, resume=resumed.checkpoint if resumed is not None else None,
                              on_checkpoint=on_checkpoint)
        progress.finish()
        record_quality(result.model, result.drop_db, dataset.name)
        save_model(result.model, args.output)
        if result.steps_done == opts.steps:
            state.unlink(missing_ok=True)  # the run is complete: nothing to continue
    layers = len(quantized_nodes(result.model))
    best = f"step {result.best_step}: {result.qat_db:.2f} dB, drop {result.drop_db:.2f} dB"
    if stopper.signum is not None and result.steps_done < opts.steps:  # a stop once the last step is done: ignored
        print(f"{PROG}: interrupted by {signal_name(stopper.signum)} at QAT step {result.steps_done} of {opts.steps}; "
              f"{args.output} holds the best file so far ({best}): the same command with --resume continues the "
              "run", file=sys.stderr)
        return exit_code(stopper.signum)
    if not args.quiet:
        print(f"{PROG}: {dataset.name} Y-PSNR: FP32 {result.fp32_db:.2f} dB, "
              f"post-training INT8 {result.ptq_db:.2f} dB, "
              f"QAT INT8 {result.qat_db:.2f} dB (drop {result.drop_db:.2f} dB; best at step {result.best_step})")
        print(f"wrote {args.output} ({args.flavour} Q/DQ, {args.weight_bits}-bit weights, {layers} convolutions in "
              "INT8, none kept in float)")
        if result.steps_done < opts.steps:
            print(f"stopped at QAT step {result.steps_done} of {opts.steps} (--stop-after): {state} keeps the run; "
                  "--resume with a later --stop-after, or none, continues it")
    return 0
