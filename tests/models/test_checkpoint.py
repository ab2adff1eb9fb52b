"""Checkpoint formats, wrappers and prefixes; refusing pickled code; corrupt files."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from sredge.errors import InputError
from sredge.models.archs.fsrcnn import ARCH as FSRCNN
from sredge.models.checkpoint import load_state_dict
from tests.conftest import asset


def _noise(n: int) -> bytes:
    """Deterministic random bytes (seeded, so a run cannot draw a real file signature by chance)."""
    return np.random.default_rng(1234).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.fixture
def sd():
    torch.manual_seed(1)
    return FSRCNN.build(**FSRCNN.test_config).state_dict()


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"params": sd},
        lambda sd: {"state_dict": sd, "epoch": 3},
        lambda sd: {"model": {f"module.{k}": v for k, v in sd.items()}},
        lambda sd: {f"module.{k}": v for k, v in sd.items()},
        lambda sd: {f"_orig_mod.{k}": v for k, v in sd.items()},
        lambda sd: {f"_orig_mod.module.{k}": v for k, v in sd.items()},  # compiled after DataParallel
        lambda sd: {**{f"module.{k}": v for k, v in sd.items()}, "n_averaged": torch.tensor(5)},  # AveragedModel
    ],
    ids=["plain", "params", "state_dict", "model+module.", "module.", "_orig_mod.", "_orig_mod.module.",
         "averaged-model"],
)
def test_wrappers_and_prefixes(tmp_path, sd, wrap):
    path = tmp_path / "m.pth"
    torch.save(wrap(sd), path)
    assert _same(load_state_dict(path), sd)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_weights_holding_nan_or_inf_are_refused_naming_the_tensor(tmp_path, sd, bad):
    """The audit: NaN weights exported and failed parity ('PSNR nan dB < 60 dB', exit 1), blaming the export."""
    key = next(k for k, v in sd.items() if v.is_floating_point())
    damaged = dict(sd) | {key: sd[key].clone().fill_(bad)}
    torch.save(damaged, tmp_path / "m.pth")
    with pytest.raises(InputError, match=rf"weight {re.escape(key)} holds NaN or Inf values"):
        load_state_dict(tmp_path / "m.pth")


def test_params_ema_preferred_over_params(tmp_path, sd):
    other = {k: v + 1 for k, v in sd.items()}
    torch.save({"params": other, "params_ema": sd}, tmp_path / "m.pth")
    assert _same(load_state_dict(tmp_path / "m.pth"), sd)


def test_safetensors(tmp_path, sd):
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "m.safetensors"))
    assert _same(load_state_dict(tmp_path / "m.safetensors"), sd)


def test_legacy_pickle_format_with_cuda_storages_loads_on_cpu():
    # The FSRCNN files are the pre-1.6 (non-zip) format, saved from CUDA tensors.
    sd = load_state_dict(asset("weights/fsrcnn/fsrcnn_x2.pth"))
    assert sd["first_part.0.weight"].device.type == "cpu"
    assert tuple(sd["last_part.weight"].shape) == (56, 1, 9, 9)


def test_pickled_model_refused_without_trust():
    path = asset("weights/vdsr/vdsr_model_epoch_50.pth")
    with pytest.raises(InputError) as exc:
        load_state_dict(path)
    msg = str(exc.value)
    assert "--trust-pickle" in msg and "arbitrary code" in msg and "vdsr.Net" in msg


def test_pickled_model_loads_with_trust_without_its_source_code():
    sd = load_state_dict(asset("weights/vdsr/vdsr_model_epoch_50.pth"), trust_pickle=True)
    assert "input.weight" in sd and "output.weight" in sd
    assert sum(k.startswith("residual_layer.") for k in sd) == 18


@pytest.mark.parametrize(
    "make,expect",
    [
        (lambda p: p.write_bytes(_noise(4096)), "not a PyTorch"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(asset("realworld/0014.jpg").read_bytes()), "not a PyTorch"),
        (lambda p: p.write_bytes(asset("weights/fsrcnn/fsrcnn_x3.pth").read_bytes()[:20000]), "truncated or corrupt"),
        (lambda p: p.write_bytes(asset("weights/srvgg/realesr-animevideov3.pth").read_bytes()[:100000]),
         "truncated or corrupt"),
        (lambda p: p.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{bad json"), "not a valid safetensors"),
        # A '{' at byte 8 alone does not make a safetensors file: the header length must fit.
        (lambda p: p.write_bytes(b"\xff" * 8 + b"{" + _noise(100)), "not a PyTorch"),
    ],
    ids=["random", "empty", "jpeg", "truncated-legacy", "truncated-zip", "bad-safetensors", "brace-at-8"],
)
def test_not_a_checkpoint(tmp_path, make, expect):
    path = tmp_path / "bad.pth"
    make(path)
    with pytest.raises(InputError, match=expect):
        load_state_dict(path)


def test_missing_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_state_dict(tmp_path / "nope.pth")
    with pytest.raises(InputError, match="is a directory"):
        load_state_dict(tmp_path)


def test_checkpoint_without_tensors(tmp_path):
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "m.pth")
    with pytest.raises(InputError, match="no model weights"):
        load_state_dict(tmp_path / "m.pth")


def _initializers(onnx_path):
    import onnx
    from onnx import numpy_helper

    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(onnx_path)).graph.initializer}


@pytest.mark.parametrize("key", ["net", "net_g", "generator", "model_state_dict", "g_ema", "model"])
def test_training_wrappers_export_like_the_plain_file(cli, tmp_path, key):
    """A real checkpoint saved inside a training wrapper (with optimizer/epoch/scheduler entries
    that must be ignored) loads to the same tensors and exports to the same ONNX weights."""
    plain = asset("weights/fsrcnn/fsrcnn_x3.pth")
    real = load_state_dict(plain)
    opt = {"state": {0: {"exp_avg": torch.ones(3)}}, "param_groups": [{"lr": 1e-4, "params": [0]}]}
    wrapped = tmp_path / f"fsrcnn_x3_{key}.pth"
    torch.save({key: real, "optimizer": opt, "epoch": 40, "scheduler": {"last_epoch": 40}}, wrapped)
    assert _same(load_state_dict(wrapped), real)

    res_plain = cli("export", plain, "-o", tmp_path / "plain.onnx", "-q")
    res_wrapped = cli("export", wrapped, "-o", tmp_path / "wrapped.onnx", "-q")
    assert res_plain.code == 0 and res_wrapped.code == 0, (res_plain.err, res_wrapped.err)
    a, b = _initializers(tmp_path / "plain.onnx"), _initializers(tmp_path / "wrapped.onnx")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_g_ema_preferred_over_raw_generator(tmp_path, sd):
    other = {k: v + 1 for k, v in sd.items()}
    torch.save({"g": other, "d": other, "g_ema": sd}, tmp_path / "m.pth")
    assert _same(load_state_dict(tmp_path / "m.pth"), sd)


# --- A whole nn.Module written with plain pickle.dump (not torch.save) ---

_TINY_VDSR_SOURCE = '''
from torch import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.input = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.residual_layer = nn.Sequential(Block(), Block())
        self.output = nn.Conv2d(8, 1, 3, padding=1, bias=False)
'''


@pytest.fixture
def raw_pickle(tmp_path, monkeypatch):
    """(path of a pickle.dump'ed module, its state dict, its module name, its folder); the module is
    importable only while its folder is on sys.path (it is removed again here)."""
    import pickle
    import sys
    import uuid

    name = f"tinyvdsr_{uuid.uuid4().hex[:8]}"
    src = tmp_path / "code"
    src.mkdir()
    (src / f"{name}.py").write_text(_TINY_VDSR_SOURCE)
    with monkeypatch.context() as m:
        m.syspath_prepend(str(src))
        mod = __import__(name)
        torch.manual_seed(5)
        net = mod.Net()
        path = tmp_path / "model.pkl"
        with path.open("wb") as fh:
            pickle.dump(net, fh)
        torch.save(net, tmp_path / "model_torch_save.pth")  # the same module through torch.save (zip format)
        sd = net.state_dict()
    sys.modules.pop(name, None)
    return path, sd, name, src


def test_raw_pickle_found_by_its_opcodes(raw_pickle):
    from sredge.models.checkpoint import pickle_globals, sniff_format

    path, _, name, _ = raw_pickle
    assert sniff_format(path) == "raw-pickle"
    assert (name, "Net") in pickle_globals(path) and (name, "Block") in pickle_globals(path)
    assert sniff_format(asset("weights/fsrcnn/fsrcnn_x2.pth")) == "pickle"  # torch.save's legacy format


def test_raw_pickle_refused_without_trust_naming_its_class(cli, raw_pickle, tmp_path):
    path, _, name, _ = raw_pickle
    with pytest.raises(InputError) as exc:
        load_state_dict(path)
    msg = str(exc.value)
    assert f"class {name}.Net" in msg and "pickled Python object" in msg and "--trust-pickle" in msg
    assert "PYTHONPATH" in msg
    res = cli("export", path, "-o", tmp_path / "m.onnx", "--scale", "2")
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1 and f"{name}.Net" in res.err


def test_raw_pickle_with_trust_names_the_missing_module(cli, raw_pickle, tmp_path):
    path, _, name, _ = raw_pickle
    with pytest.raises(InputError,
                       match=f"the pickle needs module '{name}' \\(class Net\\); put its .py on PYTHONPATH"):
        load_state_dict(path, trust_pickle=True)
    res = cli("export", path, "-o", tmp_path / "m.onnx", "--scale", "2", "--trust-pickle")
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1 and f"module '{name}'" in res.err
    assert not (tmp_path / "m.onnx").exists()


def test_raw_pickle_with_trust_and_its_module_loads_and_exports(cli, raw_pickle, tmp_path, monkeypatch):
    import sys

    path, sd, name, src = raw_pickle
    monkeypatch.syspath_prepend(str(src))
    try:
        assert _same(load_state_dict(path, trust_pickle=True), sd)
        res = cli("export", path, "-o", tmp_path / "m.onnx", "--scale", "2", "--trust-pickle", "-q")
        assert res.code == 0, res.err
    finally:
        sys.modules.pop(name, None)


def test_raw_pickle_of_a_plain_state_dict(tmp_path, sd):
    import pickle

    path = tmp_path / "weights.pkl"
    with path.open("wb") as fh:
        pickle.dump(sd, fh)
    with pytest.raises(InputError, match="plain pickle \\(pickle.dump\\).*--trust-pickle"):
        load_state_dict(path)
    assert _same(load_state_dict(path, trust_pickle=True), sd)


def test_torch_save_of_the_same_module_is_told_apart_and_read_without_its_code(raw_pickle):
    from sredge.models.checkpoint import sniff_format

    path, sd, name, _ = raw_pickle
    saved = path.with_name("model_torch_save.pth")
    assert sniff_format(saved) == "zip"
    with pytest.raises(InputError, match=f"contains pickled code \\({name}.Net: a whole model"):
        load_state_dict(saved)
    assert _same(load_state_dict(saved, trust_pickle=True), sd)  # class not importable: a stand-in reads it


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_trust_pickle_reads_a_plain_weights_file_without_unpickling_code(tmp_path, caplog, legacy):
    """--trust-pickle allows code only where a file holds some: a plain state dict is still read weights-only."""
    real = load_state_dict(asset("weights/fsrcnn/fsrcnn_x3.pth"))
    path = tmp_path / "fsrcnn_x3.pth"
    torch.save({"params": real, "epoch": 3}, path, _use_new_zipfile_serialization=not legacy)
    with caplog.at_level("WARNING", logger="sredge.models.checkpoint"):
        assert _same(load_state_dict(path, trust_pickle=True), real)
    assert "code execution" not in caplog.text
    with caplog.at_level("WARNING", logger="sredge.models.checkpoint"):  # a pickled model still needs the flag
        load_state_dict(asset("weights/vdsr/vdsr_model_epoch_50.pth"), trust_pickle=True)
    assert "code execution allowed" in caplog.text


class _CallsTheOs:
    """Pickles as a call to ``os.getpid`` (harmless), the shape of a malicious checkpoint's ``os.system``."""

    def __reduce__(self):
        import os

        return os.getpid, ()


@pytest.mark.parametrize("fmt", ["zip", "legacy", "pickle.dump"])
def test_a_pickle_that_calls_the_os_is_refused_naming_the_call(cli, tmp_path, sd, fmt):
    import os
    import pickle

    path = tmp_path / "m_x3.pth"
    obj = {"params": sd, "hook": _CallsTheOs()}
    if fmt == "pickle.dump":
        with path.open("wb") as fh:
            pickle.dump(obj, fh)
    else:
        torch.save(obj, path, _use_new_zipfile_serialization=fmt == "zip")
    call = f"{os.getpid.__module__}.getpid"  # posix.getpid on Linux
    with pytest.raises(InputError, match=f"calls {call} when loaded: an operating-system call.*do not load it"):
        load_state_dict(path)
    res = cli("export", path, "-o", tmp_path / "m.onnx")
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1 and call in res.err


def test_a_safetensors_file_cut_inside_its_header_is_called_truncated(tmp_path):
    real = load_state_dict(asset("weights/fsrcnn/fsrcnn_x3.pth"))
    whole = tmp_path / "whole.safetensors"
    save_file({k: v.contiguous() for k, v in real.items()}, str(whole))
    cut = tmp_path / "fsrcnn_x3.safetensors"
    cut.write_bytes(whole.read_bytes()[:60])
    with pytest.raises(InputError, match="is a truncated safetensors file \\(its header alone is \\d+ bytes, the "
                                         "file 60\\)"):
        load_state_dict(cut)
