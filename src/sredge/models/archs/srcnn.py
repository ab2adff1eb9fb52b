"""SRCNN (Dong et al., ECCV 2014): three convolutions on a bicubic-upsampled luma image.

Key layout of the common PyTorch port: ``conv1`` (9x9, 64), ``conv2`` (5x5, 32),
``conv3`` (5x5, C), ReLU between. Pre-upsampling network: the input is the Y channel
already bicubic-upsampled to the output size, so the weights do not tell the scale.

Also read: ``features.0`` / ``map.0`` / ``reconstruction`` (each conv wrapped in a
Sequential with its ReLU, as in Lornatang/SRCNN-PyTorch ``model.py``), renamed by
:func:`adapt_state_dict`; kernel sizes (9-5-5, 9-1-5, ...) come from the shapes.
"""

from __future__ import annotations

from torch import nn

from sredge.models.archs._util import adapt_layouts
from sredge.models.spec import ArchIO, ArchSpec, HParams, StateDict

_KEYS = ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "conv3.weight", "conv3.bias")


class SRCNN(nn.Module):
    """SRCNN. Input (N, C, H, W) in [0, 1], already upsampled; output the same shape.

    ``scale`` is not used by the network; it records which upsampling the input gets.
    """

    def __init__(self, scale: int, num_channels: int = 1, n1: int = 64, n2: int = 32,
                 f1: int = 9, f2: int = 5, f3: int = 5):
        super().__init__()
        self.conv1 = nn.Conv2d(num_channels, n1, f1, padding=f1 // 2)
        self.conv2 = nn.Conv2d(n1, n2, f2, padding=f2 // 2)
        self.conv3 = nn.Conv2d(n2, num_channels, f3, padding=f3 // 2)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.conv3(self.relu(self.conv2(self.relu(self.conv1(x)))))


LAYOUTS = ({"features.0.": "conv1.", "map.0.": "conv2.", "reconstruction.": "conv3."},)
"""Foreign key layouts (prefix -> ours) that :func:`adapt_state_dict` renames."""


def adapt_state_dict(sd: StateDict) -> dict:
    """Rename a known foreign layout onto ``conv1``/``conv2``/``conv3``; ours passes through."""
    return adapt_layouts(sd, LAYOUTS)


def detect(sd: StateDict) -> HParams | None:
    sd = adapt_state_dict(sd)
    if set(sd) != set(_KEYS):
        return None
    w1, w2, w3 = sd["conv1.weight"], sd["conv2.weight"], sd["conv3.weight"]
    if w1.ndim != 4 or w3.shape[0] != w1.shape[1]:
        return None
    return {"scale": None, "num_channels": int(w1.shape[1]), "n1": int(w1.shape[0]), "n2": int(w2.shape[0]),
            "f1": int(w1.shape[-1]), "f2": int(w2.shape[-1]), "f3": int(w3.shape[-1])}


def _io(hp: HParams) -> ArchIO:
    c = hp.get("num_channels", 1)
    return ArchIO(c, c, "y" if c == 1 else "rgb", pre_upsample=True)


ARCH = ArchSpec(
    name="srcnn",
    title="SRCNN (Dong et al. 2014)",
    build=SRCNN,
    detect=detect,
    io=_io,
    scales=(2, 3, 4, 8),
    variants={"srcnn_915": {"scale": 3, "f2": 1}, "srcnn_955": {"scale": 3}},
    test_config={"scale": 2, "n1": 16, "n2": 8},
    adapt_state_dict=adapt_state_dict,
    key_layouts=LAYOUTS,
)
