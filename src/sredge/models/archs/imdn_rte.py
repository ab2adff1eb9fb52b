"""IMDN-RTE in the registry (one module per registered name); the network lives in :mod:`.imdn`."""

from sredge.models.archs.imdn import IMDN_RTE
from sredge.models.archs.imdn import RTE_ARCH as ARCH

__all__ = ["ARCH", "IMDN_RTE"]
