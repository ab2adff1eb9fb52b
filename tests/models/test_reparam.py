"""Re-parameterization folds: each folded conv is checked against the real chain of torch convs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sredge.models.reparam import (
    collapsed,
    conv_then_pointwise,
    fold_batch_norm,
    identity_conv,
    pad_kernel,
    pointwise_then_conv,
    sum_branches,
)


def _conv(cout, cin, k, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(cout, cin, k, k, generator=g) * 0.3, torch.randn(cout, generator=g) * 0.3


@pytest.fixture
def x():
    return torch.randn(2, 5, 13, 11, generator=torch.Generator().manual_seed(7))


@pytest.mark.parametrize("k", [3, 5])
def test_pointwise_then_conv_equals_the_chain_on_the_padded_input(x, k):
    w1, b1 = _conv(12, 5, 1, 1)
    w2, b2 = _conv(4, 12, k, 2)
    w, b = pointwise_then_conv(w1, b1, w2, b2)
    assert w.shape == (4, 5, k, k) and b.shape == (4,)
    p = k // 2
    chain = F.conv2d(F.conv2d(F.pad(x, (p, p, p, p)), w1, b1), w2, b2)  # pad first, as SPAN's Conv3XC
    torch.testing.assert_close(F.conv2d(x, w, b, padding=p), chain, rtol=0, atol=1e-5)


def test_pointwise_then_conv_differs_only_on_the_border_when_the_kxk_pads_its_own_input(x):
    w1, b1 = _conv(12, 5, 1, 1)
    w2, b2 = _conv(4, 12, 3, 2)
    w, b = pointwise_then_conv(w1, b1, w2, b2)
    folded = F.conv2d(x, w, b, padding=1)
    chain = F.conv2d(F.conv2d(x, w1, b1), w2, b2, padding=1)
    torch.testing.assert_close(folded[..., 1:-1, 1:-1], chain[..., 1:-1, 1:-1], rtol=0, atol=1e-5)
    assert (folded[..., 0, :] - chain[..., 0, :]).abs().max() > 1e-3  # the documented caveat is real


def test_conv_then_pointwise_is_exact_everywhere(x):
    w1, b1 = _conv(9, 5, 3, 3)
    w2, b2 = _conv(6, 9, 1, 4)
    w, b = conv_then_pointwise(w1, b1, w2, b2)
    chain = F.conv2d(F.conv2d(x, w1, b1, padding=1), w2, b2)
    torch.testing.assert_close(F.conv2d(x, w, b, padding=1), chain, rtol=0, atol=1e-5)


def test_sum_branches_with_identity_and_mixed_kernels(x):
    branches = [_conv(5, 5, 5, 5), _conv(5, 5, 3, 6), _conv(5, 5, 1, 7), identity_conv(5)]
    w, b = sum_branches(*branches)
    assert w.shape == (5, 5, 5, 5)
    expected = sum(F.conv2d(x, bw, bb, padding=bw.shape[-1] // 2) for bw, bb in branches)
    torch.testing.assert_close(F.conv2d(x, w, b, padding=2), expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(F.conv2d(x, *identity_conv(5, 3), padding=1), x, rtol=0, atol=0)


def test_fold_batch_norm_matches_eval_mode_batch_norm(x):
    conv = nn.Conv2d(5, 6, 3, padding=1)
    bn = nn.BatchNorm2d(6, eps=1e-3)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    bn.eval()
    w, b = fold_batch_norm(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.eps)
    with torch.no_grad():
        torch.testing.assert_close(F.conv2d(x, w, b, padding=1), bn(conv(x)), rtol=0, atol=1e-5)


def test_folds_keep_the_dtype_and_reject_bad_shapes():
    w1, b1 = _conv(8, 4, 1, 1)
    w2, b2 = _conv(3, 8, 3, 2)
    w, b = pointwise_then_conv(w1, b1, w2, b2)
    assert w.dtype == b.dtype == torch.float32
    assert pad_kernel(w, 7).shape == (3, 4, 7, 7)
    with pytest.raises(ValueError, match="cannot chain"):
        pointwise_then_conv(w1, b1, w2[:, :4], b2)
    with pytest.raises(ValueError, match="cannot centre"):
        pad_kernel(w, 1)
    with pytest.raises(ValueError, match="differ"):
        sum_branches(_conv(3, 4, 3, 1), _conv(3, 5, 3, 2))
    with pytest.raises(ValueError, match="odd"):
        sum_branches((torch.zeros(3, 4, 2, 2), torch.zeros(3)))


def test_collapsed_calls_collapse_when_the_module_has_one():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 2, 1)

        def forward(self, x):
            return self.a(x) + self.b(x)

        def collapse(self):
            out = nn.Conv2d(2, 2, 3, padding=1)
            w, b = sum_branches((self.a.weight, self.a.bias), (self.b.weight, self.b.bias))
            out.weight.data, out.bias.data = w.detach(), b.detach()
            return out

    m = Branchy()
    one = collapsed(m)
    assert isinstance(one, nn.Conv2d)
    x = torch.randn(1, 2, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(one(x), m(x), rtol=0, atol=1e-5)
    plain = nn.Conv2d(2, 2, 1)
    assert collapsed(plain) is plain
