"""BT.601 colour conversion with the MATLAB ``rgb2ycbcr`` coefficients (studio swing).

All functions take and return float arrays with values in [0, 1] and channels last
(H, W, 3); Y lies in [16/255, 235/255], Cb/Cr in [16/255, 240/255]. This is the
convention of SR papers and BasicSR's Y-channel metrics. The per-pixel affine maps run
through ``cv2.transform`` (float32, multi-threaded): they sit on the video hot path.
"""

from __future__ import annotations

import cv2
import numpy as np

# rows: Y, Cb, Cr; columns: R, G, B (inputs in [0, 1], outputs in [0, 255] before the offset)
_RGB2YCBCR = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], dtype=np.float64
)
_OFFSET = np.array([16.0, 128.0, 128.0])
# Affine 3x4 matrices in [0, 1] units: [M | offset].
_FWD = np.hstack([_RGB2YCBCR / 255.0, (_OFFSET / 255.0)[:, None]])
_INV_M = np.linalg.inv(_RGB2YCBCR / 255.0)
_INV = np.hstack([_INV_M, (-_INV_M @ (_OFFSET / 255.0))[:, None]])
YCBCR_TO_RGB = _INV
"""(3, 4) float64 ``[M | offset]``: YCbCr in [0, 1] -> RGB in [0, 1] (rows R, G, B; columns Y, Cb, Cr, 1)."""


def _affine(img: np.ndarray, m: np.ndarray) -> np.ndarray:
    x = np.asarray(img, np.float32)
    shape = x.shape
    out = cv2.transform(x.reshape(-1, 1, 3), m.astype(np.float32))
    return out.reshape(shape[:-1] + (m.shape[0],))


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """RGB (..., 3) in [0, 1] -> YCbCr (..., 3) in [0, 1] (float32)."""
    return _affine(rgb, _FWD)


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """RGB (..., 3) in [0, 1] -> Y (...) in [16/255, 235/255] (float32)."""
    return _affine(rgb, _FWD[:1])[..., 0]


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """YCbCr (..., 3) in [0, 1] -> RGB (..., 3) in [0, 1], not clipped (float32)."""
    return _affine(ycbcr, _INV)
