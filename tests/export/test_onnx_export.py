"""``export_onnx`` as a library call: where it writes is checked before the export runs."""

from __future__ import annotations

import pytest

from sredge.errors import InputError

torch = pytest.importorskip("torch")


def test_an_output_that_cannot_be_written_is_refused_before_the_export(tmp_path):
    """The library audit: export_onnx to a folder or into a missing one exported first, then failed with an
    IsADirectoryError / FileNotFoundError traceback (sr-export checks its -o itself; the library did not)."""
    from sredge.export.onnx_export import export_onnx
    from sredge.models.archs.espcn import ARCH
    from sredge.models.loader import describe

    module = ARCH.build(**ARCH.test_config).eval()
    desc = describe(ARCH, dict(ARCH.test_config), sum(p.numel() for p in module.parameters()))
    with pytest.raises(InputError, match="it is a directory"):
        export_onnx(module, desc, tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        export_onnx(module, desc, tmp_path / "missing" / "m.onnx")
    assert list(tmp_path.iterdir()) == []
    assert export_onnx(module, desc, tmp_path / "m.onnx").stat().st_size > 0
