"""A small real calibration set shared by the calibration tests (built once); real models come
from tests/conftest.py.
"""

from __future__ import annotations

import pytest

from tests.conftest import asset


@pytest.fixture(scope="session")
def t91_set():
    """48 crops of 48x48 from T91 (seed 0): small enough for fast tests, real content."""
    from sredge.calibration.sets import CalibrationOptions, build_calibration_set

    return build_calibration_set([asset("calibration/T91")], CalibrationOptions(tile=48, seed=0))
