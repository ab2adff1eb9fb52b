"""Colour and format handling around real models: grey, RGBA, 16-bit, luma-only, pre-upsampling, odd sizes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sredge.imaging.metrics import psnr
from sredge.imaging.resize import imresize
from sredge.runtime.backends.ort import OrtBackend
from sredge.runtime.tiling import TileConfig
from sredge.runtime.upscaler import Upscaler
from tests.conftest import asset


def _read(rel):
    img = cv2.imread(str(asset(rel)), cv2.IMREAD_UNCHANGED)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return img


def _close_to_bicubic(out, img, scale, min_db):
    """SR output agrees with a plain bicubic upscale of the input to within ``min_db`` PSNR."""
    ref = imresize(img, scale=scale)
    peak = 65535.0 if img.dtype == np.uint16 else 255.0
    assert psnr(out.astype(np.float64), ref.astype(np.float64), peak) > min_db


@pytest.mark.parametrize("name", ["fsrcnn_x2", "espcn_x3", "anime_x4", "vdsr_x2"])
@pytest.mark.parametrize(
    "rel", ["realworld/00017_gray.png", "realworld/children-alpha.png", "realworld/tree_alpha_16bit.png",
            "realworld/0014.jpg"],
)
def test_formats_keep_their_layout(exported, name, rel):
    img = _read(rel)[:64, :80]
    with OrtBackend(exported(name)) as be:
        desc = be.descriptor()
        out = Upscaler(be.run, desc, TileConfig()).upscale(img)
    s = desc.scale
    assert out.dtype == img.dtype
    assert out.shape == (img.shape[0] * s, img.shape[1] * s) + img.shape[2:]
    _close_to_bicubic(out, img, s, 22)
    if img.ndim == 3 and img.shape[2] == 4:
        a_ref = cv2.resize(img[..., 3], (out.shape[1], out.shape[0]), interpolation=cv2.INTER_CUBIC)
        assert np.abs(out[..., 3].astype(int) - a_ref.astype(int)).max() <= 1  # alpha upscaled on its own


@pytest.mark.parametrize("name", ["fsrcnn_x2", "espcn_x3", "vdsr_x2"])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (1000, 3), (3, 1000)])
def test_awkward_sizes(exported, name, shape):
    base = _read("realworld/OST_009.png")  # 640 x 448: a real crop of every shape (1000 x 3 from a resize)
    img = np.ascontiguousarray(base[: shape[0], : shape[1]] if shape[0] <= 640 and shape[1] <= 448 else
                               cv2.resize(base[:, :3], (shape[1], shape[0]), interpolation=cv2.INTER_AREA))
    with OrtBackend(exported(name)) as be:
        desc = be.descriptor()
        out = Upscaler(be.run, desc, TileConfig(tile=64, overlap=8)).upscale(img)
    assert out.shape == (shape[0] * desc.scale, shape[1] * desc.scale, 3)
    # A 1x1 image is flat: its upscale must be flat at nearly the same colour (sub-pixel networks
    # such as ESPCN reproduce a flat input only to within a few levels). Unpadded, FSRCNN's zero
    # padding turned this pixel into a dark-rimmed dot.
    if shape == (1, 1):
        assert np.abs(out.astype(int) - img[0, 0].astype(int)).max() <= 6


def test_luma_model_keeps_colour(exported):
    img = _read("realworld/0014.jpg")
    with OrtBackend(exported("fsrcnn_x2")) as be:
        out = Upscaler(be.run, be.descriptor()).upscale(img)
    # Colour comes from the bicubic chroma: mean colour per channel within 2 levels of the input's.
    assert np.abs(out.reshape(-1, 3).mean(0) - img.reshape(-1, 3).mean(0)).max() < 2


def test_sr_beats_bicubic_on_set5(exported):
    """The whole colour path (Y, chroma, quantisation) at work: FSRCNN x2 beats bicubic on a Set5 image."""
    hr = _read("benchmarks/Set5/HR/butterfly.png")
    lr = _read("benchmarks/Set5/LR_bicubic/X2/butterflyx2.png")
    from sredge.imaging.metrics import y_psnr

    with OrtBackend(exported("fsrcnn_x2")) as be:
        sr = Upscaler(be.run, be.descriptor(), TileConfig(tile=64, overlap=12)).upscale(lr)
    bic = imresize(lr, scale=2)
    assert y_psnr(sr / 255.0, hr / 255.0, 2) > y_psnr(bic / 255.0, hr / 255.0, 2) + 2.0


def test_a_grey_image_with_a_channel_axis_keeps_it():
    """The library audit: ``upscale`` promises the input's layout, but an (H, W, 1) image came back (H', W'); a
    channels-first image was refused without saying why."""
    from sredge.errors import InputError
    from sredge.runtime.bundled import default_model

    grey = np.random.default_rng(0).integers(0, 256, (12, 17), dtype=np.uint8)
    with OrtBackend(default_model(2)) as be:
        ups = Upscaler(be.run, be.descriptor())
        flat = ups.upscale(grey)
        out = ups.upscale(grey[..., None])
        assert flat.shape == (24, 34) and out.shape == (24, 34, 1) and np.array_equal(out[..., 0], flat)
        with pytest.raises(InputError, match=r"\(3, 12, 17\) .*channels first\? transpose to \(H, W, C\)"):
            ups.upscale(np.repeat(grey[None], 3, axis=0))
