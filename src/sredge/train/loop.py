"""The training loop: Adam, cosine schedule, L1/L2 loss, periodic validation, resumable checkpoints."""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sredge._lazy import require
from sredge.atomic import write_bytes_atomic
from sredge.errors import InputError
from sredge.models.spec import ArchSpec, HParams
from sredge.train.data import PatchSampler

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


@dataclass
class TrainState:
    """What a step callback sees."""

    step: int
    loss: float
    val_psnr: float | None
    steps_per_s: float


def _checkpoint_bytes(torch, spec: ArchSpec, hparams: HParams, model, opt, sched, sampler, step: int,
                      val_psnr: float | None, opts: TrainOptions) -> bytes:
    buf = io.BytesIO()
    torch.save({
        "params": {k: v.detach().cpu() for k, v in model.state_dict().items()},  # loads anywhere
        "arch": spec.name,
        "hparams": dict(hparams),
        "step": step,
        "val_psnr": val_psnr,
        "train_options": asdict(opts),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "sampler_rng": sampler.rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
    }, buf)
    return buf.getvalue()


class TeacherSampler:
    """Distillation batches without ground truth: patches of images as they are, a teacher's outputs as targets.

    ``batch(n)`` returns (LR, target) like :class:`PatchSampler`, so the loop needs no other change.
    ``inputs`` cuts patches ``margin`` pixels wider on every side than the student's: the teacher sees
    that context, and the student's patch and its target are the centres, so the targets carry no
    border effect of the teacher's own padding.
    """

    def __init__(self, inputs, teacher, margin: int = 0):
        self.inputs, self.teacher, self.margin = inputs, teacher, margin
        self.rng = inputs.rng  # checkpointed with the run, for exact resume

    def batch(self, n: int):
        x = self.inputs.batch(n)  # (N, C, p + 2m, p + 2m) in [0, 1]
        t = self.teacher(x)
        m, s = self.margin, self.teacher.scale
        if m:
            x, t = x[:, :, m:-m, m:-m], t[:, :, m * s:-m * s, m * s:-m * s]
        return np.ascontiguousarray(x), np.ascontiguousarray(t)


def train(
    spec: ArchSpec,
    hparams: HParams,
    sampler: PatchSampler | TeacherSampler,
    out: str | Path,
    opts: TrainOptions = TrainOptions(),
    validate: Callable[[Any], float] | None = None,
    resume: bool = False,
    on_step: Callable[[TrainState], None] | None = None,
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
            so an interrupted run ends where an uninterrupted one would.
        on_step: Progress callback.
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
    step, val_psnr = 0, None
    out = Path(out)
    if resume and out.exists():
        step, val_psnr = _resume(torch, out, spec, hparams, model, opt, sched, sampler)
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
        opt.step()
        sched.step()
        step += 1
        v = float(loss.detach())
        loss_avg = v if math.isnan(loss_avg) else 0.98 * loss_avg + 0.02 * v
        if step % opts.val_every == 0 or step == end:
            if validate is not None:
                model.eval()
                with torch.no_grad():
                    val_psnr = float(validate(model))
                model.train()
            write_bytes_atomic(out, _checkpoint_bytes(torch, spec, hparams, model, opt, sched, sampler, step,
                                                      val_psnr, opts))
        if on_step is not None:
            on_step(TrainState(step, loss_avg, val_psnr, (step - done0) / max(time.perf_counter() - t0, 1e-9)))
    model.eval()
    return TrainState(step, loss_avg, val_psnr, (step - done0) / max(time.perf_counter() - t0, 1e-9))


def _resume(torch, out: Path, spec: ArchSpec, hparams: HParams, model, opt, sched, sampler) -> tuple[int, float | None]:
    """Restore a run from its checkpoint: (step, last validation PSNR).

    Raises:
        InputError: The file is not an sr-train checkpoint (damaged, truncated, another kind) or was
            trained with another configuration.
    """
    damaged = f"{out} is not a checkpoint sr-train can resume (damaged or of another kind); choose another -o"
    try:
        ck = torch.load(out, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch reports a damaged file in many ways (zip, pickle, EOF)
        raise InputError(damaged) from exc
    if not isinstance(ck, dict):
        raise InputError(damaged)
    if ck.get("arch") != spec.name or ck.get("hparams") != dict(hparams):
        raise InputError(f"{out} was trained as {ck.get('arch')} {ck.get('hparams')}; it cannot resume this run")
    try:
        model.load_state_dict(ck["params"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        sampler.rng.bit_generator.state = ck["sampler_rng"]
        torch.set_rng_state(ck["torch_rng"])
        return int(ck["step"]), ck.get("val_psnr")
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise InputError(damaged) from exc


def set5_validator(root: str | Path, desc_for: Callable[[Any], Any]) -> Callable[[Any], float]:
    """``validate(module)``: mean Y-PSNR on an HR + LR_bicubic/X{s} benchmark (crop = scale)."""
    from sredge.benchmarks.datasets import load_dataset
    from sredge.benchmarks.quality import evaluate_y_psnr

    torch = require("torch")

    def validate(module) -> float:
        desc = desc_for(module)
        pairs = load_dataset(root, desc.scale)
        device = next(module.parameters()).device
        scores = evaluate_y_psnr(lambda x: module(torch.from_numpy(x).to(device)).cpu().numpy(), desc, pairs)
        return float(np.mean(list(scores.values())))

    return validate
