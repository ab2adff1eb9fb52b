"""The training loop: Adam, cosine schedule, L1/L2 loss, periodic validation, resumable checkpoints."""

from __future__ import annotations

import io
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sredge._lazy import require
from sredge.atomic import WriteError, write_bytes_atomic
from sredge.errors import CheckFailedError, InputError
from sredge.models.spec import ArchSpec, HParams
from sredge.train.data import PatchSampler, to_color_space

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOptions:
    """Optimisation settings (the defaults train the bundled models)."""

    steps: int = 20000
    batch: int = 32
    lr: float = 2e-3
    """Adam learning rate at step 0; a cosine schedule takes it to ``lr * 1e-3`` at the last step."""
    loss: str = "l1"
    """``l1`` (default, sharper) or ``l2``."""
    val_every: int = 1000
    """Validate and checkpoint every this many steps (and at the end)."""
    seed: int = 0
    threads: int = 0
    """torch CPU threads; 0 keeps torch's default."""
    stop_after: int | None = None
    """Stop at this step (after its checkpoint) although the schedule runs to ``steps``."""
    teacher_weight: float = 1.0
    """Weight of the loss against a teacher's output, when the sampler gives one besides the ground truth."""
    device: str = "cpu"
    """torch device to train on (``"cpu"``, ``"cuda"``); patches are cut on the CPU and copied there."""


FIXED_ON_RESUME = ("batch", "lr", "loss", "seed", "teacher_weight")
""":class:`TrainOptions` a resumed run must keep: they define the optimisation. ``steps`` may change (the
cosine schedule is refitted, see :func:`train`); ``val_every``, ``stop_after``, ``threads`` and ``device``
may change freely."""


def cosine_lr(opts: TrainOptions, step: int) -> float:
    """The learning rate after ``step`` steps of a run of ``opts.steps`` steps (the cosine schedule, pure)."""
    eta_min = opts.lr * 1e-3
    return eta_min + (opts.lr - eta_min) * (1 + math.cos(math.pi * step / opts.steps)) / 2


@dataclass(frozen=True)
class Checkpoint:
    """What an sr-train checkpoint says about the run that wrote it (:func:`read_checkpoint`)."""

    path: Path
    arch: str
    hparams: dict
    step: int
    """Steps done."""
    options: dict = field(default_factory=dict)
    """The :class:`TrainOptions` of the run, as a dict (``train_options``)."""
    run_options: dict = field(default_factory=dict)
    """The caller's other options that define the run, by flag (``run_options``; empty in older checkpoints)."""
    schedule: tuple[tuple[int, int], ...] = ()
    """``(step, steps)``: from that step on, the cosine schedule ran to ``steps`` (one entry per change)."""


@dataclass
class TrainState:
    """What a step callback sees."""

    step: int
    loss: float
    val_psnr: float | None
    steps_per_s: float


def _checkpoint_bytes(torch, spec: ArchSpec, hparams: HParams, model, opt, sched, sampler, step: int,
                      val_psnr: float | None, opts: TrainOptions, run_options: Mapping[str, Any] | None,
                      schedule: tuple[tuple[int, int], ...]) -> bytes:
    buf = io.BytesIO()
    torch.save({
        "params": {k: v.detach().cpu() for k, v in model.state_dict().items()},  # loads anywhere
        "arch": spec.name,
        "hparams": dict(hparams),
        "step": step,
        "val_psnr": val_psnr,
        "train_options": asdict(opts),
        "run_options": dict(run_options or {}),
        "schedule": [list(change) for change in schedule],
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "sampler_rng": sampler.rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
    }, buf)
    return buf.getvalue()


class TeacherSampler:
    """Distillation batches without ground truth: patches of images as they are, a teacher's outputs as targets.

    ``batch(n)`` returns (LR, target) like :class:`PatchSampler`, so the loop needs no other change; both
    are in the student's colour space (``teacher.color_space``): the teacher takes the Y or RGB patches
    of ``inputs`` as they are, and the LR patches are converted after (:func:`to_color_space`).
    ``inputs`` cuts patches ``margin`` pixels wider on every side than the student's: the teacher sees
    that context, and the student's patch and its target are the centres, so the targets carry no
    border effect of the teacher's own padding.
    """

    def __init__(self, inputs, teacher, margin: int = 0):
        self.inputs, self.teacher, self.margin = inputs, teacher, margin
        self.rng = inputs.rng  # checkpointed with the run, for exact resume

    def batch(self, n: int):
        x = self.inputs.batch(n)  # (N, C, p + 2m, p + 2m) in [0, 1], Y or RGB
        t = self.teacher(x)
        m, s = self.margin, self.teacher.scale
        if m:
            x, t = x[:, :, m:-m, m:-m], t[:, :, m * s:-m * s, m * s:-m * s]
        return np.ascontiguousarray(to_color_space(x, self.teacher.color_space)), np.ascontiguousarray(t)


def train(
    spec: ArchSpec,
    hparams: HParams,
    sampler: PatchSampler | TeacherSampler,
    out: str | Path,
    opts: TrainOptions = TrainOptions(),
    validate: Callable[[Any], float] | None = None,
    resume: bool = False,
    on_step: Callable[[TrainState], None] | None = None,
    run_options: Mapping[str, Any] | None = None,
    stop: threading.Event | None = None,
) -> TrainState:
    """Train ``spec.build(**hparams)`` on patches; checkpoint to ``out`` (atomically) as it goes.

    Args:
        spec, hparams: The architecture and its configuration (``scale`` included).
        sampler: Patch source (its scale and channels must fit the network): ground-truth pairs
            (:class:`PatchSampler`; with a teacher, triples whose third member is the teacher's output,
            weighted ``opts.teacher_weight`` in the loss) or a teacher's outputs (:class:`TeacherSampler`).
        out: Checkpoint path (a ``{'params': state_dict, ...}`` file that ``sr-export`` reads).
        opts: Optimisation settings.
        validate: ``validate(module) -> Y-PSNR dB``, run every ``opts.val_every`` steps.
        resume: Continue from ``out`` when it exists (model, optimiser, schedule, RNG states),
            so an interrupted run ends where an uninterrupted one would. The options that define the
            run must be the checkpoint's (:func:`check_resume`); ``opts.steps`` may differ: the cosine
            schedule then continues as a run of ``opts.steps`` steps would from the step reached
            (:func:`cosine_lr`), and the checkpoint records the change (``schedule``).
        on_step: Progress callback.
        run_options: The caller's other options that define the run (data, patch size, teacher...),
            by flag, JSON-like values: recorded in the checkpoint (``run_options``), and a resumed run
            must give the same.
        stop: Set (by a stop signal) to end the run after the step in progress, validated and checkpointed
            as ``opts.stop_after`` would end it there, so ``resume`` continues exactly; nothing is lost.

    Raises:
        InputError: A checkpoint that cannot be resumed with these options (:func:`check_resume`).
        CheckFailedError: Training diverged (a NaN or Inf loss or validation output); the checkpoint
            of the last validation stays.
    """
    torch = require("torch")
    if opts.loss not in ("l1", "l2"):
        raise InputError(f"unknown loss {opts.loss!r} (l1, l2)")
    if opts.threads:
        torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    device = torch.device(opts.device)
    model = spec.build(**hparams).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=opts.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=opts.steps, eta_min=opts.lr * 1e-3)
    step, val_psnr, saved = 0, None, None
    schedule: tuple[tuple[int, int], ...] = ((0, opts.steps),)
    out = Path(out)
    if resume and out.exists():
        ck = _load(torch, out)
        info = _describe(out, ck)
        check_resume(info, spec.name, hparams, opts, run_options)
        _restore(torch, out, ck, model, opt, sched, sampler)
        step, val_psnr, schedule = info.step, ck.get("val_psnr"), info.schedule
        saved = step
        if sched.T_max != opts.steps:
            log.info("%s: the cosine schedule now ends at step %d (was %d)", out, opts.steps, sched.T_max)
            refit_cosine(opt, sched, opts.steps, step)
            schedule += ((step, opts.steps),)
        log.info("resumed %s at step %d", out, step)
    loss_fn = torch.nn.L1Loss() if opts.loss == "l1" else torch.nn.MSELoss()
    model.train()
    t0, done0, loss_avg = time.perf_counter(), step, math.nan
    end = min(opts.steps, opts.stop_after or opts.steps)
    while step < end:
        lr_np, hr_np, *teacher_np = sampler.batch(opts.batch)
        pred = model(torch.from_numpy(lr_np).to(device))
        loss = loss_fn(pred, torch.from_numpy(hr_np).to(device))
        if teacher_np:
            loss = loss + opts.teacher_weight * loss_fn(pred, torch.from_numpy(teacher_np[0]).to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        try:
            opt.step()
        except RuntimeError as exc:  # Adam's float32 step size overflowed (--lr 1e38)
            if "overflow" not in str(exc):
                raise
            raise CheckFailedError(f"training diverged: the optimiser's step overflowed at step {step + 1} "
                                   f"({_kept(out, saved)}); lower --lr") from None
        sched.step()
        step += 1
        v = float(loss.detach())
        if not math.isfinite(v):
            raise CheckFailedError(f"training diverged: the loss is {v} at step {step} ({_kept(out, saved)}); "
                                   "lower --lr")
        loss_avg = v if math.isnan(loss_avg) else 0.98 * loss_avg + 0.02 * v
        if stop is not None and stop.is_set():
            end = step  # checkpointed below, as --stop-after ends a run
        if step % opts.val_every == 0 or step == end:
            if validate is not None:
                model.eval()
                with torch.no_grad():
                    try:
                        val_psnr = float(validate(model))
                    except CheckFailedError as exc:  # a NaN/Inf output: the weights have diverged
                        raise CheckFailedError(f"training diverged: at step {step} the network outputs NaN or Inf "
                                               f"on the validation set ({_kept(out, saved)}); lower --lr"
                                               ) from exc
                model.train()
            try:
                write_bytes_atomic(out, _checkpoint_bytes(torch, spec, hparams, model, opt, sched, sampler, step,
                                                          val_psnr, opts, run_options, schedule))
            except WriteError as exc:  # say what is left: the last whole checkpoint, and how to go on
                keep = f"; {_kept(out, saved)}" + ("; free space, then --resume continues it" if saved else "")
                raise WriteError(out, exc.reason + keep) from None
            saved = step
        if on_step is not None:
            on_step(TrainState(step, loss_avg, val_psnr, (step - done0) / max(time.perf_counter() - t0, 1e-9)))
    model.eval()
    return TrainState(step, loss_avg, val_psnr, (step - done0) / max(time.perf_counter() - t0, 1e-9))


def _damaged(out: Path) -> InputError:
    return InputError(f"{out} is not a checkpoint sr-train can resume (damaged or of another kind); "
                      "choose another -o")


def _load(torch, out: Path) -> dict:
    """The checkpoint's dict, loaded on the CPU. Raises InputError when it is not one."""
    try:
        ck = torch.load(out, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch reports a damaged file in many ways (zip, pickle, EOF)
        raise _damaged(out) from exc
    if not isinstance(ck, dict):
        raise _damaged(out)
    return ck


def _describe(out: Path, ck: dict) -> Checkpoint:
    if not isinstance(ck.get("arch"), str) or not isinstance(ck.get("hparams"), dict) or "optimizer" not in ck:
        raise InputError(f"{out} holds weights but not an sr-train run (no architecture, sizes or optimizer "
                         "state to continue): choose another -o, or --overwrite to train over it")
    try:
        options = dict(ck.get("train_options") or {})
        schedule = tuple((int(a), int(b)) for a, b in ck.get("schedule") or ())
        if not schedule and "steps" in options:  # written before schedule changes were recorded
            schedule = ((0, int(options["steps"])),)
        return Checkpoint(out, ck.get("arch"), ck.get("hparams"), int(ck.get("step", 0)), options,
                          dict(ck.get("run_options") or {}), schedule)
    except (TypeError, ValueError) as exc:
        raise _damaged(out) from exc


def read_checkpoint(path: str | Path) -> Checkpoint:
    """What the sr-train checkpoint at ``path`` records about its run (to check a resume before any work).

    Raises:
        InputError: The file is not a checkpoint (damaged, truncated, another kind).
    """
    path = Path(path)
    return _describe(path, _load(require("torch"), path))


def _shown(value: Any) -> str:
    return format(value, ".6g") if isinstance(value, float) else str(value)


def check_resume(ck: Checkpoint, arch: str, hparams: HParams, opts: TrainOptions,
                 run_options: Mapping[str, Any] | None = None) -> None:
    """Refuse to resume ``ck`` with options that would make it another run.

    Args:
        ck: The checkpoint (:func:`read_checkpoint`).
        arch, hparams: The network the caller would train.
        opts: The caller's options: :data:`FIXED_ON_RESUME` must equal the checkpoint's, and ``steps``
            must be at least the steps it has done.
        run_options: The caller's other options that define the run, by flag: each the checkpoint
            records must be equal.

    Raises:
        InputError: One line naming the first option that differs and both values.
    """
    check_run_options(ck.path, ck.run_options, run_options or {})
    for name in FIXED_ON_RESUME:
        if name in ck.options and ck.options[name] != getattr(opts, name):
            raise changed_option(ck.path, "--" + name.replace("_", "-"), getattr(opts, name), ck.options[name])
    if ck.arch != arch or ck.hparams != dict(hparams):
        raise InputError(f"--resume {ck.path}: it was trained as {ck.arch} {ck.hparams}; it cannot resume this "
                         f"run ({arch} {dict(hparams)})")
    check_steps(ck.path, opts.steps, ck.step)


def changed_option(path: Path, flag: str, new: Any, old: Any) -> InputError:
    """The one-line refusal of a ``--resume`` of ``path`` whose ``flag`` is ``new`` where its run had ``old``
    (None: the option was not given)."""
    if old is None:
        was = f"the run it continues had no {flag}"
    else:
        was = f"the run it continues used {flag} {_shown(old)}"
    now = f"no {flag}" if new is None else f"{flag} {_shown(new)}"
    fix = "leave it out" if old is None else f"give {flag} {_shown(old)}"
    return InputError(f"--resume {path}: {now}, but {was}; a resumed run keeps it ({fix}, or --overwrite "
                      "to start over)")


def check_run_options(path: Path, recorded: Mapping[str, Any], given: Mapping[str, Any]) -> None:
    """Refuse (:func:`changed_option`) the first option, by flag, whose ``given`` value differs from the one the
    run at ``path`` ``recorded``; flags only one side has are not compared."""
    for flag, value in given.items():
        if flag in recorded and recorded[flag] != value:
            raise changed_option(path, flag, value, recorded[flag])


def check_inputs_unchanged(path: Path, recorded: Mapping[str, str], given: Mapping[str, str],
                           changed: Mapping[str, str] | None = None) -> None:
    """Refuse a ``--resume`` of ``path`` whose input no longer holds what its run began with.

    Args:
        recorded, given: Key -> digest of that input's contents, as the run recorded it and as it is now; keys
            only one side has are not compared.
        changed: Key -> what the message says changed (default: ``the KEY file has changed ... (its bytes
            differ)``).

    Raises:
        InputError: One line naming the first input that changed.
    """
    for key, digest in given.items():
        if key in recorded and recorded[key] != digest:
            what = (changed or {}).get(key, f"the {key} file has changed since the run began (its bytes differ)")
            raise InputError(f"--resume {path}: {what}; put the original back, or --overwrite to start over")


def check_steps(path: Path, steps: int, done: int) -> None:
    """Refuse a ``--resume`` of ``path`` with ``--steps`` below the ``done`` steps it has."""
    if steps < done:
        raise InputError(f"--resume {path}: --steps {steps}, but it has done {done} steps already; "
                         f"give --steps {done} or more")


def _restore(torch, out: Path, ck: dict, model, opt, sched, sampler) -> None:
    try:
        model.load_state_dict(ck["params"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        sampler.rng.bit_generator.state = ck["sampler_rng"]
        torch.set_rng_state(ck["torch_rng"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise _damaged(out) from exc


def refit_cosine(opt, sched, steps: int, step: int) -> None:
    """Continue a cosine schedule (torch's ``CosineAnnealingLR``) as a run of ``steps`` steps would, from ``step`` on.

    Each parameter group's learning rate is set to what that run has after ``step`` steps (from its base rate to
    the schedule's ``eta_min``: :func:`cosine_lr` for sr-train's single group), and ``T_max`` to ``steps``:
    torch's recursive cosine update then follows that curve to ``eta_min`` at the last step. sr-train and QAT
    (two groups, to 0) both refit this way when a resumed run is given another ``--steps``.
    """
    sched.T_max = steps
    for group, base in zip(opt.param_groups, sched.base_lrs):
        group["lr"] = sched.eta_min + (base - sched.eta_min) * (1 + math.cos(math.pi * step / steps)) / 2


def nothing_left_line(output: Path, done: int, steps: int, stop_after: int | None, what: str = "steps",
                      at_steps: str = "", at_stop: str = "") -> str | None:
    """The line a resumed run prints when it has nothing left to train (pure), or None when it has.

    ``done`` steps are done; the run goes up to ``stop_after`` (when earlier) or ``steps``. ``what`` names
    the steps ("QAT steps"); the line ends with ``at_steps`` when the limit is ``--steps``, ``at_stop`` when it
    is ``--stop-after`` (what was written, what to raise)."""
    end = min(steps, stop_after or steps)
    if end > done:
        return None
    if end < steps:
        return f"{output} has done {done} {what}; nothing left to train up to --stop-after {stop_after}{at_stop}"
    return f"{output} has done {done} {what}; nothing left to train up to --steps {steps}{at_steps}"


def _kept(out: Path, saved: int | None) -> str:
    """What a diverged run leaves at ``out``, for its error message."""
    return f"{out} keeps the checkpoint of step {saved}" if saved is not None else f"{out} not written"


def set5_validator(root: str | Path, desc_for: Callable[[Any], Any], scale: int) -> Callable[[Any], float]:
    """``validate(module)``: mean Y-PSNR on an HR + LR_bicubic/X{s} benchmark (crop = scale).

    The benchmark is listed and its headers checked here, before training: a folder that cannot be
    scored at ``scale`` (an image too small, two of one name) fails now, not at the first validation.

    Raises:
        InputError: What :func:`~sredge.benchmarks.datasets.load_dataset` refuses.
    """
    from sredge.benchmarks.datasets import load_dataset
    from sredge.benchmarks.quality import evaluate_y_psnr

    torch = require("torch")
    pairs = load_dataset(root, scale)

    def validate(module) -> float:
        desc = desc_for(module)
        device = next(module.parameters()).device
        scores = evaluate_y_psnr(lambda x: module(torch.from_numpy(x).to(device)).cpu().numpy(), desc, pairs)
        return float(np.mean(list(scores.values())))

    return validate
