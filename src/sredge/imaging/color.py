"""BT.601 colour conversion with the MATLAB ``rgb2ycbcr`` coefficients (studio swing).

All functions take and return float arrays with values in [0, 1] and channels last
(H, W, 3); Y lies in [16/255, 235/255], Cb/Cr in [16/255, 240/255]. This is the
convention of SR papers and BasicSR's Y-channel metrics.
"""

from __future__ import annotations

import numpy as np

# rows: Y, Cb, Cr; columns: R, G, B (inputs in [0, 1], outputs in [0, 255] before the offset)
_RGB2YCBCR = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], dtype=np.float64
)
_OFFSET = np.array([16.0, 128.0, 128.0])
_YCBCR2RGB = np.linalg.inv(_RGB2YCBCR)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """RGB (..., 3) in [0, 1] -> YCbCr (..., 3) in [0, 1] (float32)."""
    out = (np.asarray(rgb, np.float64) @ _RGB2YCBCR.T + _OFFSET) / 255.0
    return out.astype(np.float32)


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """RGB (..., 3) in [0, 1] -> Y (...) in [16/255, 235/255] (float32)."""
    y = (np.asarray(rgb, np.float64) @ _RGB2YCBCR[0] + 16.0) / 255.0
    return y.astype(np.float32)


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """YCbCr (..., 3) in [0, 1] -> RGB (..., 3) in [0, 1], not clipped (float32)."""
    out = (np.asarray(ycbcr, np.float64) * 255.0 - _OFFSET) @ _YCBCR2RGB.T
    return out.astype(np.float32)
