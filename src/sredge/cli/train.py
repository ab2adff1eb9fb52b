"""``sr-train``: train a small SR network on your images (L1, Adam, cosine), resumable."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path

from sredge.cli._app import Parser, run
from sredge.cli._limits import add_max_pixels, max_threads, threads_cap_line
from sredge.cli._progress import Progress, StepProgress
from sredge.data.samples import folder_arg
from sredge.errors import InputError

PROG = "sr-train"
TEACHER_MARGIN = 8
"""LR pixels of context the teacher sees around each unlabeled patch (the targets are the centres)."""
CHECKPOINT_SUFFIXES = (".pth", ".pt")
"""What ``-o`` may end with when sr-train writes a checkpoint (torch.save's file; ``--qat`` writes ONNX)."""


def build_parser() -> Parser:
    p = Parser(prog=PROG, description="Train a small super-resolution network on a folder of HR images.",
               epilog="The checkpoint loads with sr-export like any other. --resume must repeat the options that "
                      "define the run (--arch and its sizes, --scale, --channels, --data, --patch, --batch, --lr, "
                      "--loss, --seed, the teacher's); another value is refused, naming both. --steps may differ. "
                      "Exit codes: 0 trained (or nothing left to train); 1 training diverged (a NaN or Inf loss or "
                      "validation output: lower --lr); 2 bad input or usage (a refused option or output, a damaged "
                      "or mismatched --resume checkpoint, a missing extra, a full disk); 3 internal error (a bug; "
                      "SREDGE_DEBUG=1 prints the traceback); 130, 143, 129 stopped by SIGINT (Ctrl-C), SIGTERM, "
                      "SIGHUP (the last whole checkpoint stays).")
    p.add_argument("--arch", default=None, choices=("srvgg", "fsrcnn", "espcn", "sesr"),
                   help="architecture (default srvgg); sesr trains collapsible linear blocks that sr-export folds "
                        "into plain convolutions")
    p.add_argument("--scale", type=int, default=None, choices=(2, 3, 4),
                   help="upscaling factor (default: the --teacher's scale, else 2; a teacher that takes any scale, "
                        "such as VDSR, needs --scale)")
    p.add_argument("--qat", type=Path, metavar="MODEL",
                   help="quantization-aware training: fine-tune this FP32 model (an sredge .onnx or a checkpoint) "
                        "into an INT8 Q/DQ ONNX (-o NAME.int8.onnx) with trained scales and no layer in float")
    p.add_argument("--flavour", choices=("cpu", "trt"), default=None,
                   help="--qat: INT8 encoding, cpu (ONNX Runtime: u8 activations, 7-bit s8 weights) or trt "
                        "(TensorRT: symmetric s8) (default cpu)")
    p.add_argument("--weight-bits", type=int, choices=(7, 8), default=None,
                   help="--qat: the weights' integers, 8 (|q| <= 127) or 7 (|q| <= 64: OpenVINO computes them "
                        "exactly on x86 CPUs without VNNI too, where 8-bit ones saturate; still INT8 for TensorRT) "
                        "(default: cpu 7, which it takes only; trt 8)")
    p.add_argument("--qat-target", default=None, metavar="fp32|ground-truth|MODEL",
                   help="--qat: what the INT8 network learns to output, fp32 (the FP32 model's output: the loss is "
                        "the quantization error alone), ground-truth (the HR patches), or a stronger model's output "
                        "(distillation): an sredge .onnx of the same scale and channels, run on each patch, or any "
                        "checkpoint sr-export reads (VDSR too), run once on each whole training image (default fp32)")
    p.add_argument("--feats", type=int, default=None,
                   help="feature channels (default: srvgg 32, fsrcnn 56, espcn 64, sesr 16)")
    p.add_argument("--convs", type=int, default=None,
                   help="body convolutions, srvgg and sesr (default: srvgg 8, sesr 5)")
    p.add_argument("--expand", type=int, default=None,
                   help="sesr: channels inside each linear block while training (default 256); export folds them away")
    p.add_argument("--channels", type=int, default=None, choices=(1, 3),
                   help="1: train on Y, 3: on the architecture's colour space, RGB (espcn: YCbCr) (default: the "
                        "teacher's channels, else 1)")
    p.add_argument("--data", type=folder_arg, required=True,
                   help="folder of HR training images ('sample': the bundled photos); with --teacher, any images "
                        "(e.g. frames of your footage)")
    p.add_argument("--teacher", type=Path,
                   help="distil from this checkpoint: the student learns the teacher's outputs on --data "
                        "(no ground truth needed; default: none, the ground truth)")
    p.add_argument("--teacher-arch", help="architecture of --teacher when detection is ambiguous (default: detected)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow a --teacher or --qat checkpoint saved as pickled code (a whole model, e.g. the "
                        "common VDSR file); only for files you trust")
    p.add_argument("--teacher-mode", choices=("unlabeled", "ground-truth"), default=None,
                   help="unlabeled: --data are inputs as they are and the teacher's output is the only target; "
                        "ground-truth: --data are HR images, the loss is L1 to them plus --teacher-weight x L1 to "
                        "the teacher's output on their LR (default unlabeled)")
    p.add_argument("--teacher-weight", type=float, default=None,
                   help="--teacher-mode ground-truth: weight of the teacher's term (default 1.0)")
    p.add_argument("--val", type=folder_arg,
                   help="validation folder: HR/ + LR_bicubic/X{s}/, or HR images only; 'sample': the bundled photos "
                        "(default: none, so no validation and no comparison with bicubic)")
    p.add_argument("--steps", type=int, default=None,
                   help="optimiser steps (default 20000; --qat 2000); with --resume another number refits the "
                        "cosine schedule: the run continues as one of this many steps would from the step reached")
    p.add_argument("--batch", type=int, default=None, help="patches per step (default 32; --qat 16)")
    p.add_argument("--patch", type=int, default=32, help="LR patch edge (default 32)")
    p.add_argument("--lr", type=float, default=None,
                   help="Adam learning rate, cosine schedule (default 2e-3; --qat 1e-4)")
    p.add_argument("--loss", default=None, choices=("l1", "l2"), help="training loss (default l1; --qat: l1 only)")
    p.add_argument("--val-every", type=int, default=None, help="steps between validations and checkpoints "
                   "(default 1000; --qat 250)")
    p.add_argument("--stop-after", type=int, metavar="STEP",
                   help="stop at this step, any step (a checkpoint is written there whatever --val-every); "
                        "--resume continues the same schedule later (default: none, train to --steps)")
    p.add_argument("--seed", type=int, default=0, help="random seed, 0 to 2**64 - 1 (default 0)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads, at most 4 per core, or 64 where that is fewer (default 0: torch's choice)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where the network trains: auto (CUDA when PyTorch sees a GPU), cpu or cuda; patches, "
                        "teachers and validation stay on the CPU (default auto)")
    p.add_argument("--resume", action="store_true",
                   help="continue from -o when it exists (--qat: from its state, -o + .sredge-qat), with the "
                        "options of the run it continues (--steps may grow)")
    p.add_argument("--overwrite", action="store_true", help="start over, replacing -o when it exists")
    p.add_argument("-o", "--output", type=Path, required=True, help="checkpoint to write (.pth or .pt); with --qat "
                   "the INT8 ONNX to write (.onnx)")
    add_max_pixels(p)
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress lines (warnings and errors still show)")
    return p


def _given(value: int | None, default: int) -> int:
    """An option's value, or ``default`` when it was not given (0 is a value: :func:`_check_numbers` refuses it)."""
    return default if value is None else value


def _hparams(args, channels: int) -> dict:
    if args.arch == "srvgg":
        return {"scale": args.scale, "num_in_ch": channels, "num_out_ch": channels,
                "num_feat": _given(args.feats, 32), "num_conv": _given(args.convs, 8)}
    if args.arch == "sesr":
        return {"scale": args.scale, "num_channels": channels, "feats": _given(args.feats, 16),
                "blocks": _given(args.convs, 5), "expand": _given(args.expand, 256), "training_form": True}
    if args.arch == "fsrcnn":
        return {"scale": args.scale, "num_channels": channels, "d": _given(args.feats, 56)}
    n1 = _given(args.feats, 64)
    return {"scale": args.scale, "num_channels": channels, "n1": n1, "n2": max(n1 // 2, 1)}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from sredge.outputs import Input, Output, claim_outputs

    _resolve_defaults(args)
    _check_numbers(args)
    suffix = args.output.suffix.lower()
    if args.qat is None and suffix not in CHECKPOINT_SUFFIXES:
        onnx = "; an .onnx file comes from sr-export CHECKPOINT, or from --qat" if suffix == ".onnx" else ""
        raise InputError(f"sr-train writes a PyTorch checkpoint: give -o NAME.pth (or .pt), not {args.output}{onnx}")
    if args.resume and args.overwrite:
        raise InputError("--resume continues -o, --overwrite starts it over: give one of them")
    if args.output.is_dir():  # before "exists; pass --resume or --overwrite", which both then failed on it
        raise InputError(f"-o {args.output} is a folder: name the file to write (e.g. {args.output / 'model.pth'})")
    inputs = [Input(args.data, "--data")] + [Input(p, flag) for p, flag in ((args.teacher, "--teacher"),
                                                                           (args.val, "--val")) if p is not None]
    outputs = [Output(args.output, "-o", updated=args.resume)]
    if args.qat is not None:
        from sredge.cli._train_qat import check_qat_state, refuse_state_in_the_way, run_qat
        from sredge.outputs import check_outputs
        from sredge.train.qat_state import state_path

        state = state_path(args.output)
        refuse_state_in_the_way(state)
        # check_qat_state decides what an existing state means: the claim only keeps it from inputs and other runs
        outputs.append(Output(state, "-o's QAT state", updated=True))
        from sredge.runtime.backends.base import companion_files

        models = [(args.qat, "--qat")] + ([(Path(args.qat_target), "--qat-target")]
                                          if args.qat_target not in ("fp32", "ground-truth") else [])
        inputs += [Input(f, flag) for model, flag in models for f in (model, *companion_files(model))]
        check_outputs(outputs, inputs, True)  # names, folders, inputs: before the state is read or acted on
        if not args.resume and not args.overwrite and args.output.exists():
            how = ("pass --resume to continue it, --overwrite to start over" if state.exists() else
                   f"a finished QAT run keeps no state to continue ({state.name}): pass --overwrite to train it "
                   "again")
            raise InputError(f"{args.output} exists; {how}, or choose another -o")
        seen = _files_as_they_are(args.output, state)
        resumed = check_qat_state(args)
        if resumed is False:
            return 0
        with claim_outputs(outputs, inputs, args.overwrite):
            if _files_as_they_are(args.output, state) != seen:  # another run went on with them meanwhile
                raise InputError(f"another run changed {args.output} or its QAT state while this one started; run "
                                 "the command again")
            return run_qat(args, resumed)
    if not args.resume and not args.overwrite and args.output.exists():
        raise InputError(f"{args.output} exists; pass --resume to continue it, --overwrite to start over, "
                         "or choose another -o")
    if args.resume and not args.quiet and not args.output.exists():
        # Not an error (one command for the first run and every rerun), but a mistyped -o must not pass unseen.
        print(f"{PROG}: note: {args.output} does not exist yet, so this run starts at step 0; --resume continues "
              "it from its last checkpoint once it does", file=sys.stderr)
    with claim_outputs(outputs, inputs, args.overwrite):
        return _train(args)


def _resolve_defaults(args) -> None:
    """Fill the defaults that depend on --qat, and reject options that do not apply to it."""
    args.arch_given, args.scale_given = args.arch is not None, args.scale is not None
    if args.qat is not None:
        from sredge.cli._train_qat import QAT_DEFAULTS, check_qat_args

        check_qat_args(args)
        defaults = QAT_DEFAULTS
    else:
        if args.flavour is not None or args.qat_target is not None or args.weight_bits is not None:
            raise InputError("--flavour, --weight-bits and --qat-target apply to --qat only")
        defaults = {"steps": 20000, "batch": 32, "lr": 2e-3, "val_every": 1000, "loss": "l1"}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.arch = args.arch or "srvgg"
    given = {"--convs": args.convs, "--expand": args.expand}
    for flag, archs in _ARCH_ONLY.items():  # (--qat refuses both in check_qat_args)
        if args.qat is None and given[flag] is not None and args.arch not in archs:
            raise InputError(f"{flag} applies to --arch {' and '.join(archs)} only, not --arch {args.arch}")
    if args.teacher is None:  # with a teacher, its scale (see _train)
        args.scale = args.scale or 2
    if args.teacher is None and (args.teacher_mode or args.teacher_weight is not None or args.teacher_arch):
        raise InputError("--teacher-mode, --teacher-weight and --teacher-arch apply to distillation: give --teacher "
                         "CKPT")
    weight = args.teacher_weight
    if weight is not None and args.teacher_mode != "ground-truth":
        raise InputError("--teacher-weight weighs the teacher against the ground truth: it applies to "
                         "--teacher-mode ground-truth only")
    if weight is not None and not 0 < weight < math.inf:  # NaN: refused
        raise InputError(f"--teacher-weight {weight}: must be a finite number > 0")
    args.teacher_mode = args.teacher_mode or "unlabeled"
    args.teacher_weight = 1.0 if args.teacher_weight is None else args.teacher_weight


_ARCH_ONLY = {"--convs": ("srvgg", "sesr"), "--expand": ("sesr",)}
"""Size options that only some architectures have: another's run refuses them instead of ignoring them."""

SIZE_MAX = 4096
"""The largest ``--feats``, ``--convs`` and ``--expand`` taken (the networks sr-train trains use 12 to 256)."""

SEED_MAX = 2**64 - 1
"""The largest ``--seed`` torch takes (``torch.manual_seed``: an unsigned 64-bit integer)."""


def _check_numbers(args) -> None:
    """Refuse a numeric option out of its range (defaults filled in), one line naming it, before any work.

    0 is refused where it means nothing (``--feats 0`` is not the default); ``--threads 0`` is torch's choice.
    """
    # (flag, value, least); value None: not given
    least_values = [("--steps", args.steps, 1), ("--batch", args.batch, 1), ("--val-every", args.val_every, 1),
                    ("--stop-after", args.stop_after, 1), ("--patch", args.patch, 4), ("--feats", args.feats, 1),
                    ("--convs", args.convs, 1), ("--expand", args.expand, 1), ("--seed", args.seed, 0),
                    ("--threads", args.threads, 0)]
    for flag, value, least in least_values:
        if value is not None and value < least:
            zero = " (0: torch's choice)" if flag == "--threads" else ""
            raise InputError(f"{flag} {value}: must be >= {least}{zero}")
    for flag, value in (("--feats", args.feats), ("--convs", args.convs), ("--expand", args.expand)):
        if value is not None and value > SIZE_MAX:  # torch overflowed (exit 3) or filled memory for a minute
            raise InputError(f"{flag} {value}: must be <= {SIZE_MAX} (SR networks use tens to hundreds)")
    if args.seed > SEED_MAX:
        raise InputError(f"--seed {args.seed}: must be <= {SEED_MAX} (torch's largest seed)")
    if args.threads > max_threads():  # torch crashed (SIGSEGV) on --threads 100000
        raise InputError(threads_cap_line("--threads", args.threads))
    if not math.isfinite(args.lr) or args.lr <= 0:
        raise InputError(f"--lr {args.lr}: must be a finite number > 0")


def _check_fits(spec, hp: dict) -> None:
    """Count the network's parameters without allocating them (torch's ``meta`` device) and refuse one whose
    training (weights, gradients, two Adam moments) cannot fit this machine's memory; then build it once, so
    that what the count misses is one line, not an allocator's error. The network that trains is built by
    :func:`sredge.train.loop.train`. (``--convs 100000`` filled 17 GB for 85 s before a refusal naming --batch.)"""
    import torch

    from sredge.runtime.memory import require_memory

    flags = [flag for key, flag in _HPARAM_FLAGS.items() if key in hp and flag in ("--feats", "--convs", "--expand")]
    sizes = ", ".join(f"{flag} {hp[key]}" for key, flag in _HPARAM_FLAGS.items() if flag in flags and key in hp)
    smaller = "give a smaller " + " or ".join(dict.fromkeys(flags))
    try:
        with torch.device("meta"):
            params = sum(p.numel() for p in spec.build(**hp).parameters())
        require_memory(16 * params, f"the {spec.name} network ({sizes}) has {params:,} parameters; training them "
                       "needs", smaller)
        spec.build(**hp)
    except (RuntimeError, TypeError, OverflowError) as exc:
        if isinstance(exc, RuntimeError) and not (_allocation_failed(exc) or "overflow" in str(exc).lower()):
            raise
        raise InputError(f"the {spec.name} network ({sizes}) does not fit in memory: {smaller}") from None


def _check_batch_fits(args, hp: dict, channels: int) -> None:
    """Refuse a ``--batch`` x ``--patch`` whose training could not fit this machine's memory, by a rough count
    (patches, targets, and two feature maps per layer kept for the backward pass): a huge --batch ran for
    ever building its patches instead of failing."""
    from sredge.runtime.memory import require_memory

    width = max(v for k, v in hp.items() if k in ("num_feat", "feats", "d", "n1", "expand"))
    depth = hp.get("num_conv") or hp.get("blocks") or 4
    pixels = args.patch * args.patch
    need = 4 * args.batch * (pixels * channels * (1 + 2 * args.scale**2) + 2 * pixels * width * (depth + 2))
    require_memory(need, f"training --batch {args.batch} of --patch {args.patch} needs",
                   "give a smaller --batch or --patch")


def _allocation_failed(exc: RuntimeError) -> bool:
    """Whether torch's CPU allocator raised ``exc`` ("can't allocate memory: you tried to allocate N bytes")."""
    return "allocate" in str(exc)


def _out_of_memory(args) -> InputError:
    return InputError(f"out of memory training batches of {args.batch} patches of {args.patch} px: give a smaller "
                      "--batch or --patch (the last checkpoint written, if any, is whole)")


def _train(args) -> int:
    """Build the sampler and validator, train, and checkpoint to the claimed -o."""
    from sredge._lazy import require

    require("torch")
    device = train_device(args.device)  # before the data is read: a missing GPU is a one-line error at once
    from sredge.models.loader import describe
    from sredge.models.registry import get_arch
    from sredge.train.data import PatchOptions, PatchSampler
    from sredge.train.loop import TrainOptions, set5_validator, train

    spec = get_arch(args.arch)
    teacher, scale_note = None, None
    if args.teacher is not None:
        teacher = _load_teacher(args)
        if args.scale is None:  # the student upscales as its teacher does
            args.scale = teacher.descriptor.scale
            if args.scale not in (2, 3, 4):
                raise InputError(f"the teacher upscales x{args.scale}; sr-train trains x2, x3 or x4 students "
                                 "(pass --scale)")
            scale_note = f"{PROG}: training x{args.scale}, the teacher's scale (told by its {teacher.scale_source})"
    channels = args.channels or (teacher.descriptor.in_channels if teacher else 1)
    hp = _hparams(args, channels)
    _check_fits(spec, hp)
    _check_batch_fits(args, hp, channels)
    color_space = spec.io(hp).color_space  # the checkpoint's descriptor declares it: patches and targets are in it
    opts = TrainOptions(steps=args.steps, batch=args.batch, lr=args.lr, loss=args.loss, val_every=args.val_every,
                        seed=args.seed, threads=args.threads, stop_after=args.stop_after,
                        teacher_weight=args.teacher_weight, device=device)
    run_options = _run_options(args, hp)
    if args.resume and args.output.exists() and not _check_resume(args, spec, hp, opts, run_options):
        return 0
    # Before the teacher's pass and the patches: a --val folder that cannot be scored fails now.
    validate = set5_validator(args.val, lambda m: describe(spec, hp, 0), hp["scale"]) if args.val else None
    if scale_note is not None and not args.quiet:
        print(scale_note, file=sys.stderr)
    if teacher is not None:
        from sredge.train.teacher import Teacher

        teacher = Teacher(teacher.module, teacher.descriptor, args.scale, color_space)
    if teacher is not None and args.teacher_mode == "unlabeled":
        from sredge.train.data import InputPatchSampler
        from sredge.train.loop import TeacherSampler

        inputs = InputPatchSampler(args.data, args.patch + 2 * TEACHER_MARGIN, luma=channels == 1, seed=args.seed,
                                   max_pixels=args.max_pixels,
                                   what=f"--patch {args.patch} and the teacher's {TEACHER_MARGIN}-pixel margin on "
                                        "each side")
        sampler = TeacherSampler(inputs, teacher, margin=TEACHER_MARGIN)
    else:
        # the teacher's pass over --data (up to minutes): a progress line with the time remaining
        bar = Progress(PROG, enabled=teacher is not None and not args.quiet, unit="teacher outputs")
        sampler = PatchSampler(args.data, PatchOptions(args.scale, args.patch, color_space=color_space,
                                                       max_pixels=args.max_pixels), seed=args.seed,
                               teacher=teacher, on_image=bar.update)
        bar.finish()
    progress = StepProgress(PROG, args.steps, enabled=not args.quiet, stop=args.stop_after)

    def on_step(st) -> None:
        progress.update(st.step, st.loss, st.val_psnr, st.steps_per_s)

    from sredge.cli._signals import exit_code, signal_name, stop_on_signals

    try:
        with stop_on_signals() as stopper:  # a stop ends the run at a checkpoint: nothing done is lost
            final = train(spec, hp, sampler, args.output, opts, validate=validate, resume=args.resume,
                          on_step=on_step, run_options=run_options, stop=stopper.event)
    except MemoryError:  # numpy's patches of a huge --batch
        raise _out_of_memory(args) from None
    except RuntimeError as exc:
        if not _allocation_failed(exc):
            raise
        raise _out_of_memory(args) from None
    progress.finish()
    if stopper.signum is not None:
        print(f"{PROG}: interrupted by {signal_name(stopper.signum)}; step {final.step} of {args.steps} is "
              f"checkpointed in {args.output}: the same command with --resume"
              f"{' in place of --overwrite' if args.overwrite else ''} continues it", file=sys.stderr)
        return exit_code(stopper.signum)
    if not args.quiet:
        val = f", validation Y-PSNR {final.val_psnr:.2f} dB" if final.val_psnr is not None else ""
        print(f"wrote {args.output} after {final.step} steps{val}")
    if final.val_psnr is not None:  # a warning: shown with -q too
        from sredge.benchmarks.datasets import load_dataset
        from sredge.benchmarks.quality import evaluate_bicubic, mean

        bicubic = mean(evaluate_bicubic(load_dataset(args.val, args.scale)))
        if final.val_psnr <= bicubic:
            print(f"{PROG}: warning: the network ({final.val_psnr:.2f} dB) is no better than bicubic upscaling "
                  f"({bicubic:.2f} dB) on {args.val}; train longer (--steps, --resume) or check --data",
                  file=sys.stderr)
    return 0


def _load_teacher(args):
    """Load ``--teacher``; without ``--scale``, one whose weights do not tell its scale (VDSR) is refused naming
    the scales sr-train trains (the loader's hint names the architecture's: any from 2 to 16 for VDSR)."""
    from sredge.models.loader import load_model
    from sredge.models.registry import without_rename_hints

    try:
        return load_model(args.teacher, arch=args.teacher_arch, scale=args.scale, trust_pickle=args.trust_pickle)
    except InputError as exc:
        if args.scale is not None or "do not tell the scale" not in str(exc):
            # the loader speaks sr-export's flags: here the architecture is --teacher-arch, and keys are not renamed
            raise InputError(without_rename_hints(str(exc)).replace("--arch", "--teacher-arch")) from exc
        raise InputError(f"{args.teacher}: the teacher's weights do not tell its scale; pass --scale 2, 3 or 4 "
                         "(the scales sr-train trains)") from exc


_HPARAM_FLAGS = {"scale": "--scale", "num_in_ch": "--channels", "num_channels": "--channels", "num_feat": "--feats",
                 "feats": "--feats", "d": "--feats", "n1": "--feats", "num_conv": "--convs", "blocks": "--convs",
                 "expand": "--expand"}
"""The option behind each hyper-parameter of :func:`_hparams` (the others follow from these)."""


def _run_options(args, hp: dict) -> dict:
    """The options that define this run besides :class:`TrainOptions`, by flag, as resolved (defaults filled in).

    The checkpoint records them; ``--resume`` must give the same (see :func:`sredge.train.loop.check_resume`).
    """
    from sredge.train.data import data_fingerprint

    flags = {"--arch": args.arch}
    flags.update({flag: hp[key] for key, flag in _HPARAM_FLAGS.items() if key in hp})
    flags.update({"--data": str(args.data.resolve()), "--patch": args.patch,
                  "--teacher": str(args.teacher.resolve()) if args.teacher is not None else None,
                  "--teacher-mode": args.teacher_mode if args.teacher is not None else None,
                  DATA_KEY: data_fingerprint(args.data)})  # the same paths with other contents: another run
    if args.teacher is not None:
        from sredge.runtime.segments import file_sha256

        flags[TEACHER_KEY] = file_sha256(args.teacher)
    return flags


DATA_KEY, TEACHER_KEY = "--data contents", "--teacher contents"
"""Run options that record what --data and --teacher held (checked with their own message on --resume)."""


def _check_resume(args, spec, hp: dict, opts, run_options: dict) -> bool:
    """Check that ``-o`` can be resumed with these options, before any data is read; False: nothing to train.

    Says (one line) when ``--steps`` refits the checkpoint's cosine schedule.
    """
    from dataclasses import replace

    from sredge.train.loop import check_inputs_unchanged, check_resume, cosine_lr, nothing_left_line, read_checkpoint

    ck = read_checkpoint(args.output)
    contents = {k: run_options[k] for k in (DATA_KEY, TEACHER_KEY) if k in run_options}
    check_resume(ck, spec.name, hp, opts, {k: v for k, v in run_options.items() if k not in contents})
    check_inputs_unchanged(args.output, ck.run_options or {}, contents, {
        DATA_KEY: f"the images in --data {args.data} have changed since the run began (images added, removed or "
                  "resized)",
        TEACHER_KEY: f"the --teacher file {args.teacher} has changed since the run began (its bytes differ)"})
    done = nothing_left_line(args.output, ck.step, opts.steps, opts.stop_after,
                             at_steps=" (a larger --steps trains longer)", at_stop=" (a larger --stop-after trains "
                             "longer)")
    if done is not None:
        if not args.quiet:
            print(done)
        return False
    planned = ck.schedule[-1][1] if ck.schedule else opts.steps
    if planned != opts.steps and not args.quiet:
        how = "stretched" if opts.steps > planned else "shortened"
        was, now = cosine_lr(replace(opts, steps=planned), ck.step), cosine_lr(opts, ck.step)
        print(f"{PROG}: --steps {opts.steps} (the checkpoint planned {planned}): the cosine schedule is {how} to "
              f"{opts.steps} steps; from step {ck.step} the learning rate continues at {now:.3g} (was {was:.3g})",
              file=sys.stderr)
    return True


def train_device(device: str) -> str:
    """The torch device ``--device`` means here (``"cpu"`` or ``"cuda"``).

    Raises:
        InputError: ``cuda`` asked for, but PyTorch sees no CUDA device.
    """
    from sredge._lazy import require
    from sredge.runtime.backends.torch_backend import plan_device

    return plan_device(device, False, require("torch").cuda.is_available())[0]


def _files_as_they_are(*paths: Path) -> tuple:
    """Each path's identity and contents as far as ``stat`` tells (inode, size, modification time), or None."""
    def one(p: Path):
        try:
            st = p.stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    return tuple(one(p) for p in paths)


def entry() -> None:
    """Console-script entry point."""
    sys.exit(run(PROG, main, process_ends=True))


if __name__ == "__main__":
    entry()
