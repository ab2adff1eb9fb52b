"""Checkpoint formats, wrappers and prefixes; refusing pickled code; corrupt files."""

from __future__ import annotations


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
    ],
    ids=["plain", "params", "state_dict", "model+module.", "module.", "_orig_mod."],
)
def test_wrappers_and_prefixes(tmp_path, sd, wrap):
    path = tmp_path / "m.pth"
    torch.save(wrap(sd), path)
    assert _same(load_state_dict(path), sd)


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
