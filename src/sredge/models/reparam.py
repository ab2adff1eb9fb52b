"""Structural re-parameterization: fold chains and parallel branches of linear convolutions into one conv.

A training-time block built from linear pieces (a 1x1 expansion, a kxk conv, a 1x1 projection, a 1x1
shortcut, an identity, a batch norm) computes the same function as a single kxk convolution; these pure
functions compute that convolution's weight and bias. They work on tensors only (no modules, no state),
in float64 internally so that the folded weights round once, and return the input dtype. The chain and
sum folds take ``float64=False`` to compute in the input dtype instead: a network that trains through
its folded kernels (sredge's SESR) calls them on every step.

Layouts follow ``torch.nn.Conv2d``: a weight is (out_channels, in_channels, k, k) with k odd, a bias is
(out_channels,); every conv is stride 1, dilation 1, groups 1, and a kxk conv pads by k // 2 with zeros.

Where the border is exact: a chain ``1x1 -> kxk`` equals one kxk conv on the zero-padded *input* only if
the 1x1 conv also runs over the padded border (its bias fills it); SPAN's ``Conv3XC`` does exactly that
(pads the input, then runs 1x1 -> 3x3 without padding -> 1x1). A chain whose kxk conv zero-pads its own
input (the 1x1's output) differs from the folded conv on the outer k // 2 pixels whenever the 1x1 has a
bias. ``kxk -> 1x1`` chains and parallel sums are exact everywhere.
"""

from __future__ import annotations

from typing import Any

Tensor = Any  # torch.Tensor; torch is imported lazily so that this module loads without it


def _check_conv(weight: Tensor, bias: Tensor, what: str) -> None:
    if weight.ndim != 4 or weight.shape[2] != weight.shape[3] or weight.shape[2] % 2 == 0:
        raise ValueError(f"{what}: weight must be (out, in, k, k) with k odd, got {tuple(weight.shape)}")
    if bias.shape != (weight.shape[0],):
        raise ValueError(f"{what}: bias must be ({weight.shape[0]},), got {tuple(bias.shape)}")


def _work_dtype(float64: bool):
    """The cast each fold applies to its inputs: to float64, or none (compute in the input dtype)."""
    return (lambda t: t.double()) if float64 else (lambda t: t)


def pad_kernel(weight: Tensor, kernel_size: int) -> Tensor:
    """Centre a smaller odd kernel in a ``kernel_size`` x ``kernel_size`` one (zeros around it).

    Args:
        weight: (out, in, k, k), k odd and at most ``kernel_size``.
        kernel_size: Odd target size.

    Returns:
        (out, in, kernel_size, kernel_size); the same conv when it pads by ``kernel_size // 2``.
    """
    import torch.nn.functional as F

    k = int(weight.shape[-1])
    if kernel_size < k or (kernel_size - k) % 2:
        raise ValueError(f"cannot centre a {k}x{k} kernel in {kernel_size}x{kernel_size}")
    p = (kernel_size - k) // 2
    return F.pad(weight, (p, p, p, p))


def pointwise_then_conv(w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> tuple[Tensor, Tensor]:
    """Fold ``conv1x1(w1, b1)`` followed by ``convkxk(w2, b2)`` into one kxk conv.

    Args:
        w1: (mid, in, 1, 1); b1: (mid,).
        w2: (out, mid, k, k); b2: (out,).

    Returns:
        (weight (out, in, k, k), bias (out,)) with ``weight[o, i] = sum_m w2[o, m] * w1[m, i]`` and
        ``bias = b2 + sum over m, taps of w2 * b1`` (every tap sees the 1x1's bias; see the module
        docstring for when that holds at the border).
    """
    import torch

    _check_conv(w1, b1, "1x1 conv")
    _check_conv(w2, b2, "kxk conv")
    if w1.shape[2] != 1 or w2.shape[1] != w1.shape[0]:
        raise ValueError(f"cannot chain 1x1 {tuple(w1.shape)} into {tuple(w2.shape)}")
    dt = w2.dtype
    a, c = w1.double()[:, :, 0, 0], w2.double()
    weight = torch.einsum("omhw,mi->oihw", c, a)
    bias = b2.double() + torch.einsum("omhw,m->o", c, b1.double())
    return weight.to(dt), bias.to(dt)


def conv_then_pointwise(w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor,
                        float64: bool = True) -> tuple[Tensor, Tensor]:
    """Fold ``convkxk(w1, b1)`` followed by ``conv1x1(w2, b2)`` into one kxk conv (exact everywhere).

    Args:
        w1: (mid, in, k, k); b1: (mid,).
        w2: (out, mid, 1, 1); b2: (out,).

    Returns:
        (weight (out, in, k, k), bias (out,)): ``weight = w2 @ w1`` per tap, ``bias = w2 @ b1 + b2``.
    """
    import torch

    _check_conv(w1, b1, "kxk conv")
    _check_conv(w2, b2, "1x1 conv")
    if w2.shape[2] != 1 or w2.shape[1] != w1.shape[0]:
        raise ValueError(f"cannot chain {tuple(w1.shape)} into 1x1 {tuple(w2.shape)}")
    dt, up = w1.dtype, _work_dtype(float64)
    p = up(w2)[:, :, 0, 0]
    weight = torch.einsum("om,mihw->oihw", p, up(w1))
    bias = p @ up(b1) + up(b2)
    return weight.to(dt), bias.to(dt)


def sum_branches(*branches: tuple[Tensor, Tensor], float64: bool = True) -> tuple[Tensor, Tensor]:
    """One conv equal to the sum of parallel convs on the same input (kernels centred, then added).

    Args:
        branches: (weight (out, in, k_j, k_j), bias (out,)) pairs with the same out and in; odd k_j.

    Returns:
        (weight (out, in, K, K), bias (out,)) with K the largest k_j.
    """
    if not branches:
        raise ValueError("sum_branches needs at least one branch")
    for w, b in branches:
        _check_conv(w, b, "branch")
    k = max(int(w.shape[-1]) for w, _ in branches)
    shape = branches[0][0].shape[:2]
    if any(w.shape[:2] != shape for w, _ in branches):
        raise ValueError(f"branches differ in (out, in) channels: {[tuple(w.shape[:2]) for w, _ in branches]}")
    dt, up = branches[0][0].dtype, _work_dtype(float64)
    weight = sum(pad_kernel(up(w), k) for w, _ in branches)
    bias = sum(up(b) for _, b in branches)
    return weight.to(dt), bias.to(dt)


def identity_conv(channels: int, kernel_size: int = 1, dtype: Any = None, device: Any = None) -> tuple[Tensor, Tensor]:
    """The identity (a residual connection) as a ``channels -> channels`` conv with zero bias.

    Returns:
        (weight (channels, channels, kernel_size, kernel_size), bias (channels,)).
    """
    import torch

    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {kernel_size}")
    weight = torch.zeros(channels, channels, kernel_size, kernel_size, dtype=dtype, device=device)
    c = kernel_size // 2
    weight[torch.arange(channels), torch.arange(channels), c, c] = 1.0
    return weight, torch.zeros(channels, dtype=dtype, device=device)


def fold_batch_norm(weight: Tensor, bias: Tensor | None, mean: Tensor, var: Tensor, gamma: Tensor,
                    beta: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Fold an inference-mode ``BatchNorm2d`` that follows a conv into the conv.

    Args:
        weight: (out, in, k, k); bias: (out,) or None.
        mean, var, gamma, beta: (out,) running statistics and affine parameters.
        eps: The batch norm's epsilon.

    Returns:
        (weight, bias) of the conv whose output equals ``bn(conv(x))``.
    """
    import torch

    dt = weight.dtype
    scale = gamma.double() / torch.sqrt(var.double() + eps)
    b = bias.double() if bias is not None else torch.zeros_like(scale)
    return (weight.double() * scale[:, None, None, None]).to(dt), ((b - mean.double()) * scale + beta.double()).to(dt)


def collapsed(module: Any) -> Any:
    """The inference form of a network: ``module.collapse()`` when it defines one, else ``module``.

    A network with training-time branches (SPAN's Conv3XC, sredge's own re-parameterizable blocks)
    defines ``collapse() -> nn.Module`` returning an equivalent module with the branches folded; the
    ONNX exporter calls this so that what it writes is the collapsed graph.
    """
    collapse = getattr(module, "collapse", None)
    return collapse() if callable(collapse) else module
