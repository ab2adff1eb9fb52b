"""Upscaling one image or frame: colour handling, tiling and the model, in three timed stages.

Colour handling lives here and in :mod:`sredge.imaging.model_io`, nowhere else:
greyscale stays greyscale, RGBA keeps its alpha (upscaled bicubically, separately from
the colour), 16-bit stays 16-bit, luma-only networks see Y with chroma upscaled
bicubically, and pre-upsampling networks get the MATLAB-bicubic input they expect.

Two checks guard the result: before the first image or frame of a size is prepared, the memory
it needs is compared with what is available (:func:`sredge.runtime.memory.check_fits`), and every
network output is checked for NaN or Inf before it becomes pixels (a wrong result is not success).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sredge.errors import CheckFailedError, InputError
from sredge.imaging.io import to_float
from sredge.imaging.model_io import image_to_input_and_chroma, output_to_rgb, output_to_rgb8
from sredge.models.descriptor import ModelDescriptor
from sredge.runtime.memory import DEFAULT_FEATURE_CHANNELS, check_fits
from sredge.runtime.tiling import MIN_SIDE, PipelinedRunner, Runner, TileConfig, pad_to, plan_tiles, run_tiles
from sredge.runtime.video_io import Frame


@dataclass
class Prepared:
    """A decoded image turned into network input, with what is needed to rebuild the output."""

    x: np.ndarray
    """(C, H', W') float32 network input in [0, value_range]."""
    chroma: np.ndarray | None
    """(H, W, 2) CbCr for luma-only networks."""
    alpha: np.ndarray | None
    """(H, W) float32 alpha in [0, 1] of an RGBA input."""
    grey: bool
    """The input had one channel; the output will too."""
    dtype: np.dtype
    """uint8 or uint16: the output's sample type."""
    i420_chroma: tuple[np.ndarray, np.ndarray] | None = None
    """(U, V) planes, (H/2, W/2) uint8, of a frame that stays YUV 4:2:0 (see :meth:`Upscaler.preprocess_i420`)."""
    channel_axis: bool = False
    """The grey input was (H, W, 1): the output keeps that axis."""


def takes_i420(desc: ModelDescriptor) -> bool:
    """Whether video frames can stay YUV 4:2:0 through this network (pure).

    A luma-only network sees exactly the Y plane of limited-range BT.601 video (the MATLAB
    ``rgb2ycbcr`` Y that SR networks are trained on is that Y), and the input's 4:2:0 chroma
    upscaled by the scale is the output's 4:2:0 chroma: no RGB conversion is needed at all.
    """
    return desc.color_space == "y" and not desc.pre_upsample and desc.in_channels == 1


class Upscaler:
    """Upscale images with one model. Images are (H, W) or (H, W, 1) grey, (H, W, 3) RGB or (H, W, 4) RGBA (channels
    last, RGB order: OpenCV's BGR must be converted first), uint8 or uint16 (floats are refused, not guessed at)."""

    def __init__(self, run: Runner, desc: ModelDescriptor, tiling: TileConfig = TileConfig(),
                 name: str = "", run_many: PipelinedRunner | None = None,
                 feature_channels: int = DEFAULT_FEATURE_CHANNELS):
        """
        Args:
            run: The model: (N, C, h, w) float32 -> (N, C_out, h*s, w*s) float32.
            run_many: Optional, the model over a sequence of such batches (a backend's ``run_many``,
                which overlaps copies and compute); used for the tiles of each image when given.
            desc: Its descriptor.
            tiling: How to tile each image.
            name: The model as errors name it (its file name); default: the descriptor's variant or architecture.
            feature_channels: Its activation channels, for the memory check
                (:func:`~sredge.runtime.memory.model_feature_channels`).
        """
        self.name = name or desc.variant or desc.arch
        self.run_model = run
        self.run_many = run_many
        self.desc = desc
        self.tiling = tiling
        self.feature_channels = feature_channels
        self.net_scale = 1 if desc.pre_upsample else desc.scale
        self._fits: tuple | None = None  # the last image shape check_memory admitted: checked once, not per frame

    def check_memory(self, height: int, width: int, channels: int = 3, itemsize: int = 1) -> None:
        """Refuse an image of this size when upscaling it would not fit in memory (see
        :func:`~sredge.runtime.memory.check_fits`); checked once per size, before the first allocation.

        Raises:
            InputError: Naming the memory needed and available, and the ``--tile`` that fits.
        """
        key = (height, width, channels, itemsize)
        if key != self._fits:
            check_fits(height, width, self.desc, self.tiling, channels, itemsize,
                       feature_channels=self.feature_channels)
            self._fits = key

    def preprocess(self, img: np.ndarray) -> Prepared:
        """Image -> network input (see :class:`Prepared`).

        Raises:
            InputError: Not an 8- or 16-bit grey, RGB or RGBA image (channels last), or too large for memory.
        """
        img = np.asarray(img)
        if img.dtype not in (np.uint8, np.uint16):
            raise InputError(f"unsupported image sample type {img.dtype} (8- or 16-bit images)")
        channel_axis = img.ndim == 3 and img.shape[2] == 1
        if channel_axis:
            img = img[..., 0]
        if img.ndim in (2, 3) and min(img.shape[:2]) >= 1:
            self.check_memory(img.shape[0], img.shape[1], 1 if img.ndim == 2 else img.shape[2], img.dtype.itemsize)
        if img.ndim == 2:
            grey, alpha, rgb = True, None, np.repeat(to_float(img)[..., None], 3, axis=2)
        elif img.ndim == 3 and img.shape[2] in (3, 4):
            grey = False
            f = to_float(img)
            rgb, alpha = f[..., :3], (f[..., 3] if img.shape[2] == 4 else None)
        else:
            first = " (channels first? transpose to (H, W, C))" if img.ndim == 3 and img.shape[0] in (1, 3, 4) else ""
            raise InputError(f"unsupported image layout {img.shape} (grey, RGB or RGBA){first}")
        if min(rgb.shape[:2]) < 1:
            raise InputError("empty image")
        x, chroma = image_to_input_and_chroma(rgb, self.desc)
        return Prepared(x[0], chroma, alpha, grey, img.dtype, channel_axis=channel_axis)

    def preprocess_i420(self, i420: np.ndarray) -> Prepared:
        """A YUV 4:2:0 frame ``(H * 3 // 2, W)`` uint8 (even H, W) -> network input of its Y plane.

        Only for networks where :func:`takes_i420` holds; the chroma planes are kept for
        :meth:`postprocess`, which then returns an I420 frame ``scale`` times larger.
        """
        h, w = i420.shape[0] * 2 // 3, i420.shape[1]
        self.check_memory(h, w)  # as for RGB frames: one check per video, whichever path its frames take
        q = (h // 2) * (w // 2)
        chroma = i420[h:].reshape(-1)
        u, v = chroma[:q].reshape(h // 2, w // 2), chroma[q:].reshape(h // 2, w // 2)
        x = cv2.multiply(i420[:h], 1.0, dtype=cv2.CV_32F, scale=self.desc.value_range / 255.0)
        return Prepared(x[None], None, None, False, np.dtype(np.uint8), (u, v))

    def preprocess_frame(self, frame: Frame) -> Prepared:
        """A video frame -> network input: its Y plane when the frame is I420 and :func:`takes_i420`
        holds for this network, else its RGB (an I420 frame converted)."""
        if frame.i420 is not None and takes_i420(self.desc):
            return self.preprocess_i420(frame.i420)
        return self.preprocess(frame.to_rgb())

    def infer(self, x: np.ndarray) -> np.ndarray:
        """(C, H', W') network input -> (1, C_out, H'*s, W'*s) network output, tiled per the config.

        Inputs thinner than ``MIN_SIDE`` are padded (reflect, or edge when too small to reflect)
        and the output cropped: otherwise a network's zero padding dominates a 1-pixel image.
        """
        h, w = x.shape[1:]
        if h < MIN_SIDE or w < MIN_SIDE:
            x = pad_to(x, max(h, MIN_SIDE), max(w, MIN_SIDE))
        plan = plan_tiles(x.shape[1], x.shape[2], self.tiling)
        out = run_tiles(x, self.run_model, plan, self.net_scale, self.tiling.batch, self.tiling.blend,
                        run_many=self.run_many)
        s = self.net_scale
        return out[None, :, : h * s, : w * s]

    def postprocess(self, out: np.ndarray, prep: Prepared) -> np.ndarray:
        """Network output -> image in the input's layout and sample type, ``scale`` times larger.

        A frame prepared by :meth:`preprocess_i420` comes back as an I420 array ``(H' * 3 // 2, W')``.

        Raises:
            CheckFailedError: The output holds NaN or Inf (see :func:`check_finite`).
        """
        check_finite(out, self.desc, "the image", self.name)
        return self._to_pixels(out, prep)

    def _to_pixels(self, out: np.ndarray, prep: Prepared) -> np.ndarray:
        if prep.i420_chroma is not None:
            y = cv2.convertScaleAbs(cv2.max(out[0, 0], 0.0), alpha=255.0 / self.desc.value_range)
            h, w = y.shape
            u, v = (cv2.resize(c, (w // 2, h // 2), interpolation=cv2.INTER_CUBIC) for c in prep.i420_chroma)
            return np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(h * 3 // 2, w)
        if prep.dtype == np.uint8 and not prep.grey and prep.alpha is None:  # straight to uint8, no float RGB
            return output_to_rgb8(out, self.desc, prep.chroma)
        rgb = output_to_rgb(out, self.desc, prep.chroma)
        h, w = rgb.shape[:2]
        if prep.grey:
            result = rgb.mean(axis=2, keepdims=prep.channel_axis)
        elif prep.alpha is not None:
            a = np.clip(cv2.resize(prep.alpha, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
            result = np.concatenate([rgb, a[..., None]], axis=2)
        else:
            result = rgb
        peak = 65535.0 if prep.dtype == np.uint16 else 255.0
        return np.round(np.clip(result, 0.0, 1.0) * peak).astype(prep.dtype)

    def postprocess_frame(self, out: np.ndarray, prep: Prepared, src: Frame) -> Frame:
        """Network output -> the upscaled video frame, I420 when ``prep`` came from an I420 frame, with ``src``'s
        timestamp and index.

        Raises:
            CheckFailedError: The output holds NaN or Inf (see :func:`check_finite`), naming the frame.
        """
        check_finite(out, self.desc, f"frame {src.index}", self.name)
        data = self._to_pixels(out, prep)
        if prep.i420_chroma is not None:
            return Frame(None, src.pts, src.index, i420=data)
        return Frame(data, src.pts, src.index)

    def upscale_frame(self, frame: Frame) -> Frame:
        """All three stages for one video frame (see :meth:`preprocess_frame`)."""
        prep = self.preprocess_frame(frame)
        return self.postprocess_frame(self.infer(prep.x), prep, frame)

    def upscale(self, img: np.ndarray) -> np.ndarray:
        """All three stages: an image in, the upscaled image out (same layout and sample type)."""
        prep = self.preprocess(img)
        return self.postprocess(self.infer(prep.x), prep)


def check_finite(out: np.ndarray, desc: ModelDescriptor, where: str, name: str = "") -> None:
    """Refuse a network output with NaN or Inf values: it would become black or garbage pixels.

    One float32 sum over the output (a NaN or Inf anywhere makes it non-finite, as does a sum past
    3.4e38, which no image output reaches): no temporary array, and cheaper than ``np.isfinite(out).all()``
    (7 against 10 ms on a 3 x 2160 x 3840 output on the development machine).

    Raises:
        CheckFailedError: Naming the model (``name``, default the descriptor's), ``where`` (the image or
            frame) and the likely cause.
    """
    if not np.isfinite(out.sum(dtype=np.float32)):
        name = name or desc.variant or desc.arch
        half = "" if desc.precision == "fp32" else f" ({desc.precision})"
        raise CheckFailedError(f"the model {name}{half} produced NaN or Inf values on {where}: FP16 overflow? "
                               "try the FP32 model (or the model file is damaged)")
