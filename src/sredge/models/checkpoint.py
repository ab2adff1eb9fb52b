"""Reading checkpoints into a flat state dict, safely by default.

Formats: PyTorch zip and legacy ``.pth``/``.pt`` files read with
``torch.load(weights_only=True)``, and ``.safetensors``. Common wrappers are
unwrapped (BasicSR ``params_ema``/``params``, ``state_dict``, ``model_state_dict``,
``model``, ``net``, ``net_g``, ``generator``, ``g_ema``) and
``module.`` / ``_orig_mod.`` prefixes removed.

A checkpoint that stores pickled code (a whole ``nn.Module``) is refused unless
the caller passes ``trust_pickle=True``: unpickling can run arbitrary code. A plain
``pickle.dump`` file (not ``torch.save``) is told apart by its first bytes; the classes it
needs are named from its opcodes (read with :mod:`pickletools`, nothing executed).
"""

from __future__ import annotations

import importlib.util
import io
import logging
import pickle
import pickletools
import re
import types
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sredge._lazy import require
from sredge.errors import InputError

log = logging.getLogger(__name__)

_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOL = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
_LFS_POINTER = b"version https://git-lfs.github.com/spec/"
# torch.save's legacy (non-zip) format first pickles this number; a plain pickle.dump does not.
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
# Modules whose globals are data plumbing, not the model's own class.
_DATA_MODULES = ("builtins", "__builtin__", "copyreg", "copy_reg", "collections", "_codecs", "torch", "numpy")
# Wrapper keys tried in order; BasicSR saves the EMA weights (the ones to use) as params_ema, and
# StyleGAN-style GAN checkpoints keep the generator's EMA as g_ema beside g/d. Other entries
# (optimizer, scheduler, epoch, ...) are ignored.
_WRAPPER_KEYS = (
    "params_ema", "params", "g_ema", "state_dict", "model_state_dict", "model", "net_g", "net", "generator",
)
_PREFIXES = ("module.", "_orig_mod.")
_SAFETENSORS_MAX_HEADER = 100_000_000
"""The largest header the safetensors format allows (its MAX_HEADER_SIZE)."""
# Modules torch.load(weights_only=True) never allows: a pickle that calls into them runs commands when
# loaded (the shape of a malicious checkpoint), not a model class.
_BLOCKED_MODULES = ("os", "posix", "nt", "sys", "subprocess")


def sniff_format(path: Path) -> str:
    """Classify a checkpoint file by its first bytes: ``"zip"``, ``"pickle"`` (torch.save's legacy format),
    ``"raw-pickle"`` (a plain ``pickle.dump``) or ``"safetensors"``.

    Raises:
        InputError: The file is missing, unreadable, empty, a Git LFS pointer, or not a checkpoint at all.
    """
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a checkpoint file")
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_LFS_POINTER))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if head[:2] in _PICKLE_PROTOCOL:
        return "raw-pickle" if _is_plain_pickle(path) else "pickle"
    # safetensors: u64 little-endian header length, then a JSON header that fits in the file.
    if len(head) >= 9 and head[8:9] == b"{":
        header, size = int.from_bytes(head[:8], "little"), path.stat().st_size
        if 0 < header <= size - 8:
            return "safetensors"
        if header <= _SAFETENSORS_MAX_HEADER:  # a plausible header that the file cuts short
            raise InputError(f"{path} is a truncated safetensors file (its header alone is {header + 8} bytes, "
                             f"the file {size}): download or copy it again")
    if head.startswith(_LFS_POINTER):
        raise InputError(
            f"{path} is a Git LFS pointer, not the weights: run `git lfs pull` in its repository "
            "(or download the file itself)"
        )
    kind = "an empty file" if not head else "not a PyTorch or safetensors checkpoint"
    raise InputError(f"{path} is {kind} (expected a .pth/.pt/.ckpt state dict or .safetensors)")


def load_state_dict(path: str | Path, trust_pickle: bool = False) -> dict[str, Any]:
    """Load a checkpoint file as a flat ``{parameter name: tensor}`` dict on the CPU.

    Same as ``load_checkpoint(path, trust_pickle)[0]``.
    """
    return load_checkpoint(path, trust_pickle)[0]


def load_checkpoint(path: str | Path, trust_pickle: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load a checkpoint file: its flat ``{parameter name: tensor}`` dict on the CPU, and what it records.

    Args:
        path: ``.pth``/``.pt``/``.ckpt`` (zip or legacy pickle) or ``.safetensors`` file.
        trust_pickle: Allow unpickling code (whole pickled models). Only for files you trust.

    Returns:
        (state dict, record): the unwrapped state dict, float tensors as stored (no dtype change);
        the record is :func:`training_record` of the file's top level (empty for other files).

    Raises:
        InputError: Missing/corrupt file, pickled code without ``trust_pickle``, or no tensors.
        MissingDependencyError: torch (or safetensors) is not installed.
    """
    path = Path(path)
    fmt = sniff_format(path)
    if fmt == "safetensors":
        st = require("safetensors.torch")
        try:
            obj: Any = st.load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own SafetensorError on bad headers
            raise InputError(f"{path} is not a valid safetensors file ({_first_line(exc)})") from exc
    elif fmt == "raw-pickle":
        obj = _raw_pickle_load(path, trust_pickle)
    else:
        obj = _torch_load(path, trust_pickle)
    return _unwrap(obj, path), training_record(obj)


def training_record(obj: Any) -> dict[str, Any]:
    """What an ``sr-train`` checkpoint says about its network (pure).

    sr-train writes ``{"params": ..., "arch": NAME, "hparams": {"scale": S, ...}, "train_options": ...}``;
    the scale of some architectures (FSRCNN's transposed convolution) is not in the weights, so the
    record is the only place it is written. Other tools' top-level ``arch`` keys (often a class name)
    are not read: only a dict with sr-train's ``train_options`` and ``params`` is a record.

    Returns:
        ``{"arch": NAME, "scale": S}`` with the keys such a dict holds in those types; empty otherwise.
    """
    if not isinstance(obj, Mapping) or "train_options" not in obj or "params" not in obj:
        return {}
    record: dict[str, Any] = {}
    if isinstance(obj.get("arch"), str) and obj["arch"]:
        record["arch"] = obj["arch"]
    hparams = obj.get("hparams")
    if isinstance(hparams, Mapping) and type(hparams.get("scale")) is int:
        record["scale"] = hparams["scale"]
    return record


def _is_plain_pickle(path: Path) -> bool:
    """True for a complete pickle that is not torch.save's legacy format (opcodes only; nothing runs).

    Anything else (torch's magic number first, or a pickle that does not parse) is left to torch.load,
    which names legacy files' own problems."""
    try:
        with path.open("rb") as fh:
            for op, arg, _ in pickletools.genops(fh):
                if op.name in ("PROTO", "FRAME"):
                    continue
                if op.name == "LONG1" and arg == _TORCH_LEGACY_MAGIC:
                    return False
                break
            for _ in pickletools.genops(fh):  # the rest must parse too
                pass
    except (ValueError, EOFError, OSError):  # what pickletools raises on anything that is not a pickle
        return False
    return True


def pickle_globals(path: Path) -> list[tuple[str, str]]:
    """The ``(module, name)`` globals a plain pickle imports, in order, read from its opcodes.

    Nothing is executed: ``GLOBAL``/``INST`` carry the names, ``STACK_GLOBAL`` takes the two strings
    pushed before it (directly or through the memo).
    """
    found: list[tuple[str, str]] = []
    recent: list[object] = []  # the last values pushed (None for anything that is not a string)
    memo: dict[int, object] = {}
    with path.open("rb") as fh:
        for op, arg, _ in pickletools.genops(fh):
            name = op.name
            if name in ("GLOBAL", "INST"):
                mod, _, cls = str(arg).partition(" ")
                found.append((mod, cls))
                recent.append(None)
            elif name == "STACK_GLOBAL":
                if len(recent) >= 2 and isinstance(recent[-2], str) and isinstance(recent[-1], str):
                    found.append((recent[-2], recent[-1]))
                recent.append(None)
            elif "UNICODE" in name or "STRING" in name:
                recent.append(arg if isinstance(arg, str) else None)
            elif name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(arg)] = recent[-1] if recent else None
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                recent.append(memo.get(int(arg)))
            elif name not in ("PROTO", "FRAME", "STOP"):
                recent.append(None)
            del recent[:-2]
    return list(dict.fromkeys(found))


def _model_classes(found: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(m, n) for m, n in found if m.split(".")[0] not in _DATA_MODULES]


def _raw_pickle_load(path: Path, trust_pickle: bool) -> Any:
    """A plain ``pickle.dump`` file: refused without trust (naming its classes), else unpickled with
    every module it needs importable (a missing one is named, never replaced by a stand-in)."""
    classes = _model_classes(pickle_globals(path))
    calls = [f"{m}.{n}" for m, n in classes if m.split(".")[0] in _BLOCKED_MODULES]
    if not trust_pickle and calls:
        raise _os_call_error(path, calls[0])
    if not trust_pickle and not classes:
        raise InputError(f"{path} is a plain pickle (pickle.dump), not a torch.save file: reading it runs code "
                         "(its tensors are stored as calls); if you trust its source, pass --trust-pickle")
    if not trust_pickle:
        what = ", ".join(f"{m}.{n}" for m, n in classes[:3])
        raise InputError(
            f"{path} is a pickled Python object (class {what}; pickle.dump of a whole model), not a weights "
            "file; --trust-pickle loads it by running its code (arbitrary code: only for files you trust), and "
            f"its module must be importable ('{classes[0][0]}' on PYTHONPATH)"
        )
    for mod, cls in classes:
        top = mod.split(".")[0]
        if importlib.util.find_spec(top) is None:
            raise InputError(f"{path}: the pickle needs module '{mod}' (class {cls}); put its .py on PYTHONPATH "
                             "(or re-save it with torch.save(model.state_dict(), ...))")
    log.warning("unpickling %s with code execution allowed (--trust-pickle)", path)
    try:
        with path.open("rb") as fh:
            return _CpuUnpickler(fh).load()
    except (ImportError, AttributeError) as exc:
        raise InputError(f"{path}: the pickle needs code this Python cannot find ({_first_line(exc)}); "
                         "put the module that defines it on PYTHONPATH") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, RuntimeError, TypeError) as exc:
        raise InputError(f"{path} is truncated or corrupt ({_first_line(exc)})") from exc


def _os_call_error(path: Path, glob: str) -> InputError:
    """The refusal of a pickle that calls into the operating system (``posix.system``) when loaded."""
    return InputError(f"{path} contains pickled code that calls {glob} when loaded: an operating-system call, not "
                      "weights or a model class, as malicious checkpoints make; do not load it (--trust-pickle "
                      "would run that call)")


class _CpuUnpickler(pickle.Unpickler):
    """Plain unpickler whose tensor storages (pickled as torch.save bytes) load onto the CPU."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            torch = require("torch")
            return lambda b: torch.load(io.BytesIO(b), map_location="cpu", weights_only=False)
        return super().find_class(module, name)


def _torch_load(path: Path, trust_pickle: bool) -> Any:
    """``torch.load`` of a zip or legacy file: weights only, and with ``trust_pickle`` unpickling code only
    when the file holds some (a plain weights file never runs code, whatever the flag)."""
    torch = require("torch")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            if not trust_pickle:
                raise
        log.warning("unpickling %s with code execution allowed (--trust-pickle)", path)
        with warnings.catch_warnings():  # "source code of class ... has changed": expected here
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_TrustingPickle)
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        m = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", msg)
        if m:
            glob = m.group(1)
            if glob.split(".")[0] in _BLOCKED_MODULES:
                raise _os_call_error(path, glob) from exc
            if glob.split(".")[0] in _DATA_MODULES:  # e.g. a numpy scalar saved beside the weights
                raise InputError(
                    f"{path} contains pickled code ({glob}), not just weights; loading it can run arbitrary "
                    "code. If you trust its source, pass --trust-pickle"
                ) from exc
            raise InputError(
                f"{path} contains pickled code ({glob}: a whole model saved with torch.save(model), or objects "
                "saved beside the weights), not just weights; --trust-pickle loads it by running that code "
                "(arbitrary code: only for files you trust) and reads the weights even where the class is not "
                "importable"
            ) from exc
        raise InputError(f"{path} is not a valid PyTorch checkpoint ({_first_line(exc)})") from exc
    except (RuntimeError, EOFError, ValueError, OSError, AttributeError, ImportError, TypeError) as exc:
        raise InputError(f"{path} is truncated or corrupt ({_first_line(exc)})") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__


class _TrustingUnpickler(pickle.Unpickler):
    """Unpickler that stands in an empty ``nn.Module`` subclass for classes it cannot import.

    A pickled module restores its ``_parameters``/``_modules`` into the stand-in's
    ``__dict__``, so ``state_dict()`` works without the original source code.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            nn = require("torch.nn")
            log.info("no code for %s.%s; using a stand-in module to read its weights", module, name)
            return type(name, (nn.Module,), {"__module__": f"sredge.standin.{module}"})


_TrustingPickle = types.SimpleNamespace(
    Unpickler=_TrustingUnpickler, load=pickle.load, __name__="sredge_trusting_pickle"
)


def _unwrap(obj: Any, path: Path) -> dict[str, Any]:
    torch = require("torch")
    for _ in range(4):  # wrappers nest at most a few levels ({'model': {'state_dict': ...}})
        if isinstance(obj, torch.nn.Module):
            obj = obj.state_dict()
        if not isinstance(obj, Mapping):
            break
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return _finite(_strip_prefixes(dict(obj)), path, torch)
        inner = next((obj[k] for k in _WRAPPER_KEYS if k in obj and _has_tensors(obj[k], torch)), None)
        if inner is None:
            # Mixed dicts (e.g. {'epoch': 3, 'conv.weight': t}): keep the tensors.
            tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
            if tensors:
                return _finite(_strip_prefixes(tensors), path, torch)
            break
        obj = inner
    raise InputError(f"{path} holds no model weights (no tensors found under {', '.join(_WRAPPER_KEYS)})")


def _has_tensors(obj: Any, torch: Any) -> bool:
    if isinstance(obj, torch.nn.Module):
        return True
    return isinstance(obj, Mapping) and any(
        isinstance(v, (torch.Tensor, Mapping, torch.nn.Module)) for v in obj.values()
    )


_AVERAGED = "n_averaged"
"""The counter torch's ``AveragedModel`` (SWA, EMA) saves beside its ``module.`` weights."""


def _strip_prefixes(sd: dict[str, Any]) -> dict[str, Any]:
    """``sd`` without the prefixes wrappers add to every key, in any order and nesting
    (``_orig_mod.module.conv.weight`` -> ``conv.weight``), and without AveragedModel's counter."""
    if _AVERAGED in sd and len(sd) > 1 and all(k.startswith("module.") for k in sd if k != _AVERAGED):
        sd = {k: v for k, v in sd.items() if k != _AVERAGED}
    stripped = True
    while stripped and sd:
        stripped = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) for k in sd):
                sd = {k[len(prefix):]: v for k, v in sd.items()}
                stripped = True
    return sd


def _finite(sd: dict[str, Any], path: Path, torch: Any) -> dict[str, Any]:
    """``sd``, refused when a floating-point weight holds NaN or Inf (a damaged file or a diverged run):
    exporting it would fail the parity check with ``PSNR nan``, which blames the export."""
    for key, value in sd.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise InputError(f"{path}: weight {key} holds NaN or Inf values: the checkpoint is damaged, or "
                             "its training diverged; use another checkpoint")
    return sd
