"""The PyTorch reference backend on real and small random checkpoints (no mocks)."""

from __future__ import annotations

import numpy as np
import pytest

from sredge.errors import InputError
from sredge.runtime.backends import BackendOptions, open_backend
from sredge.runtime.backends.base import Backend
from sredge.runtime.backends.torch_backend import TorchBackend, plan_device
from tests.conftest import asset

torch = pytest.importorskip("torch")

CPU = BackendOptions(device="cpu")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(scope="module")
def espcn(tmp_path_factory):
    """A small random ESPCN (x3, 3 channels) saved as a plain state dict, and its module."""
    from sredge.models.archs.espcn import ARCH

    torch.manual_seed(0)
    module = ARCH.build(**ARCH.test_config).eval()
    path = tmp_path_factory.mktemp("ckpt") / "tiny_espcn.pth"
    torch.save(module.state_dict(), path)
    return path, module


def _frame(n=1, c=3, h=17, w=23, seed=0):
    return np.random.default_rng(seed).random((n, c, h, w), dtype=np.float32)


# ---------------------------------------------------------------- planning (pure)


@pytest.mark.parametrize(
    "device,fp16,cuda,expect",
    [
        ("cpu", False, False, ("cpu", "float32")),
        ("cpu", False, True, ("cpu", "float32")),
        ("auto", False, False, ("cpu", "float32")),
        ("auto", False, True, ("cuda", "float32")),
        ("auto", True, True, ("cuda", "float16")),
        ("cuda", True, True, ("cuda", "float16")),
        ("cuda", False, True, ("cuda", "float32")),
    ],
)
def test_plan_device(device, fp16, cuda, expect):
    assert plan_device(device, fp16, cuda) == expect


@pytest.mark.parametrize(
    "device,cuda,match",
    [("cpu", True, "--device cpu was asked for"), ("cpu", False, "fp16 needs CUDA"),
     ("auto", False, "no CUDA device is available")],
)
def test_plan_device_refuses_fp16_on_cpu(device, cuda, match):
    with pytest.raises(InputError, match=match):
        plan_device(device, True, cuda)


def test_plan_device_refuses_missing_cuda_and_unknown_devices():
    with pytest.raises(InputError, match="sees no CUDA device"):
        plan_device("cuda", False, False)
    with pytest.raises(InputError, match="unknown device 'tpu'"):
        plan_device("tpu", False, True)


# ---------------------------------------------------------------- real runs


def test_random_espcn_matches_the_module(espcn):
    path, module = espcn
    x = _frame(n=2)
    with TorchBackend(path, CPU) as be:
        assert isinstance(be, Backend)
        y = be.run(x)
        spec, desc = be.input_spec(), be.descriptor()
    with torch.inference_mode():
        ref = module(torch.from_numpy(x)).numpy()
    assert y.dtype == np.float32 and y.shape == (2, 3, 51, 69)
    np.testing.assert_array_equal(y, ref)
    assert (desc.arch, desc.scale, desc.in_channels) == ("espcn", 3, 3)
    assert (spec.channels, spec.height, spec.width, spec.fixed_hw) == (3, None, None, None)


def test_run_does_not_touch_the_input_and_takes_read_only_arrays(espcn):
    x = _frame()
    x.setflags(write=False)
    before = x.copy()
    with TorchBackend(espcn[0], CPU) as be:
        be.run(x)
    np.testing.assert_array_equal(x, before)


def test_open_backend_builds_a_torch_backend(espcn):
    be = open_backend("torch", espcn[0], CPU, scale=3)
    assert isinstance(be, TorchBackend)
    with be:
        assert be.descriptor().scale == 3


def test_real_fsrcnn_checkpoint():
    path = asset("weights/fsrcnn/fsrcnn_x2.pth")
    x = _frame(c=1, h=20, w=31, seed=1)
    with TorchBackend(path, CPU) as be:
        desc = be.descriptor()
        y = be.run(x)
        assert be.input_spec().channels == 1
        from sredge.models.loader import load_model

        module = load_model(path).module
    assert (desc.arch, desc.scale, desc.color_space) == ("fsrcnn", 2, "y")
    assert y.shape == (1, 1, 40, 62) and y.dtype == np.float32
    with torch.inference_mode():
        np.testing.assert_array_equal(y, module(torch.from_numpy(x)).numpy())
    # A real SR network roughly preserves the mean brightness of its input.
    assert abs(float(y.mean()) - float(x.mean())) < 0.1


def test_fp16_on_cpu_is_refused(espcn):
    be = TorchBackend(espcn[0], BackendOptions(device="cpu", fp16=True))
    with pytest.raises(InputError, match="fp16 needs CUDA"):
        be.__enter__()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_auto_fp16_without_cuda_is_refused_not_ignored(espcn):
    with pytest.raises(InputError, match="fp16 needs CUDA"), TorchBackend(espcn[0], BackendOptions(fp16=True)):
        pass


def test_wrong_channels_are_refused(espcn):
    with TorchBackend(espcn[0], CPU) as be, pytest.raises(InputError, match=r"takes \(N, 3, H, W\)"):
        be.run(_frame(c=1))


def test_an_integer_batch_is_refused(espcn):
    """The library audit: an 8-bit batch was cast to float32 and ran as values 0..255, garbage out, no error."""
    with TorchBackend(espcn[0], CPU) as be, pytest.raises(InputError, match="not uint8 samples"):
        be.run((_frame() * 255).astype(np.uint8))


def test_use_outside_with_is_an_error(espcn):
    be = TorchBackend(espcn[0], CPU)
    with pytest.raises(RuntimeError, match="outside its 'with' block"):
        be.run(_frame())


def test_threads_are_set_and_restored(espcn):
    before = torch.get_num_threads()
    with TorchBackend(espcn[0], BackendOptions(device="cpu", threads=2)) as be:
        assert torch.get_num_threads() == 2
        line = be.describe()
    assert line == f"torch {torch.__version__} cpu float32, 2 threads"
    assert torch.get_num_threads() == before


def test_bad_checkpoint_is_an_input_error(tmp_path):
    bad = tmp_path / "x.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError), TorchBackend(bad, CPU):
        pass


@needs_cuda
def test_cuda_fp16_matches_cpu_fp32(espcn):
    x = _frame(n=2, h=32, w=40, seed=3)
    with TorchBackend(espcn[0], CPU) as cpu:
        ref = cpu.run(x)
    with TorchBackend(espcn[0], BackendOptions(device="cuda", fp16=True)) as gpu:
        y = gpu.run(x)
        assert "cuda" in gpu.describe() and "float16" in gpu.describe()
    with TorchBackend(espcn[0], BackendOptions(device="cuda")) as gpu32:
        y32 = gpu32.run(x)
    assert y.dtype == np.float32 and y.shape == ref.shape
    np.testing.assert_allclose(y, ref, atol=1e-2)  # float16 keeps ~3 decimal digits on [0, 1]
    np.testing.assert_allclose(y32, ref, atol=1e-3)  # TF32 convolutions may be enabled on Ampere+
