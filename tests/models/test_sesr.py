"""SESR-style collapsible linear blocks: the fast training forward, the exact collapse, sr-train -> sr-export."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from sredge.imaging.color import rgb_to_y
from sredge.imaging.io import read_rgb, to_float
from sredge.imaging.metrics import psnr
from sredge.models.archs import sesr
from sredge.models.registry import detect


def _trained_like(scale=2, channels=1, feats=8, blocks=3, expand=32, seed=0) -> sesr.SESR:
    """A training-form network with every parameter moved off its initial value (PReLU slopes too)."""
    torch.manual_seed(seed)
    net = sesr.SESR(scale, channels, feats, blocks, expand)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return net.eval()


def _real_y(h=60, w=84) -> torch.Tensor:
    from sredge.data.samples import sample_folder

    img = to_float(read_rgb(sorted(sample_folder().iterdir())[0]))[:h, :w]
    return torch.from_numpy(np.ascontiguousarray(rgb_to_y(img)[None, None], dtype=np.float32))


@pytest.mark.parametrize("scale,channels", [(2, 1), (3, 1), (4, 3)])
def test_folded_training_forward_is_the_expanded_network(scale, channels):
    """The fast forward (kernels folded per step) computes what the literal k x k -> 1 x 1 chains compute."""
    net = _trained_like(scale, channels)
    x = _real_y().repeat(1, channels, 1, 1)
    with torch.no_grad():
        fast = net.set_expanded(False)(x)
        literal = net.set_expanded(True)(x)
    assert fast.shape == (1, channels, 60 * scale, 84 * scale)
    assert psnr(fast, literal) >= 100


def test_gradients_of_the_two_forwards_agree():
    """Same function of the same parameters: the over-parameterized training dynamics are kept."""
    x = _real_y(24, 32)
    grads = []
    for expanded in (False, True):
        net = _trained_like().set_expanded(expanded).train()
        net(x).square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-7)


def test_collapse_is_exact_on_a_real_image_and_leaves_the_training_module_alone():
    net = _trained_like(scale=3).set_expanded(True)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    flat = net.collapse()
    assert isinstance(flat, sesr.SESRCollapsed) and not flat.training
    convs = [m for m in flat.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(5, 5), (3, 3), (3, 3), (3, 3), (5, 5)]  # no 1x1 left
    x = _real_y(37, 53)  # not a multiple of anything: the border folds exactly too
    with torch.no_grad():
        y, z = net(x), flat(x)
    assert psnr(y, z) >= 60
    assert float((y - z).abs().max()) < 1e-5
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_both_forms_are_detected_and_other_archs_reject_them():
    net = _trained_like(scale=4, feats=8, blocks=2, expand=24)
    hp = detect(net.state_dict()).hparams
    assert hp == {"scale": 4, "num_channels": 1, "feats": 8, "blocks": 2, "expand": 24, "training_form": True}
    flat_hp = detect(net.collapse().state_dict()).hparams
    assert flat_hp == {"scale": 4, "num_channels": 1, "feats": 8, "blocks": 2, "training_form": False}
    sd = dict(net.state_dict())
    sd["extra.weight"] = torch.zeros(1)
    assert sesr.detect(sd) is None


def test_sr_train_checkpoint_exports_collapsed_without_flags(cli, tmp_path):
    """sr-train --arch sesr writes the training form; sr-export folds it and checks parity against it."""
    pytest.importorskip("torch")
    ckpt = tmp_path / "s.pth"
    res = cli("train", "--arch", "sesr", "--scale", "3", "--feats", "8", "--convs", "2", "--expand", "16",
              "--data", "sample", "--steps", "3", "--batch", "2", "--val-every", "3", "--threads", "1", "-o", ckpt,
              "-q")
    assert res.code == 0, res.err
    out = tmp_path / "s.onnx"
    res = cli("export", ckpt, "-o", out)  # no --arch, no --scale
    assert res.code == 0, res.err
    assert "detected   sesr" in res.out and "scale x3" in res.out
    graph = onnx.load(str(out)).graph
    kernels = [next(a.ints for a in n.attribute if a.name == "kernel_shape") for n in graph.node if n.op_type == "Conv"]
    assert [list(k) for k in kernels] == [[5, 5], [3, 3], [3, 3], [5, 5]]
    flat_params = 8 * 25 + 8 + 8 + 2 * (8 * 8 * 9 + 8 + 8) + 9 * 8 * 25 + 9
    assert f"parameters {flat_params:,}" in res.out  # what is deployed, not the training form

    ck = torch.load(ckpt, weights_only=True)
    net = sesr.SESR(**{k: v for k, v in ck["hparams"].items() if k != "training_form"}).set_expanded(True)
    net.load_state_dict(ck["params"])
    x = _real_y(29, 31)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = net.eval()(x).numpy()
    assert psnr(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0], ref) >= 60
