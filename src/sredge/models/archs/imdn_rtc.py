"""IMDN-RTC in the registry (one module per registered name); the network lives in :mod:`.imdn`."""

from sredge.models.archs.imdn import IMDN_RTC
from sredge.models.archs.imdn import RTC_ARCH as ARCH

__all__ = ["ARCH", "IMDN_RTC"]
