"""The core install works without torch: import, --help, and a clear error naming the extra.

torch is installed in the test environment, so a child process blocks it
(``sys.modules['torch'] = None`` makes ``import torch`` raise ImportError), which is
what a core-only install sees.
"""

from __future__ import annotations

import importlib.metadata
import pkgutil
import re
import subprocess
import sys
import textwrap

import pytest

import sredge

BLOCK = ("import sys\nfor m in ('torch', 'onnxscript', 'onnxslim', 'safetensors', 'tensorrt'):\n"
         "    sys.modules[m] = None\n")


def _run_blocked(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + textwrap.dedent(code)], capture_output=True, text=True)


def _all_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(sredge.__path__, "sredge."))


def test_every_module_outside_the_model_definitions_imports_without_torch():
    # Architecture definitions are torch code by nature; everything else must import without it.
    mods = [m for m in _all_modules() if not m.startswith("sredge.models.archs.") or m.endswith("archs")]
    proc = _run_blocked(f"""
        import importlib
        for m in {mods!r}:
            importlib.import_module(m)
        assert 'torch' not in sys.modules or sys.modules['torch'] is None
        print('ok', len({mods!r}))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")


@pytest.mark.parametrize("command,module", [("sr-export", "export"), ("sr-run", "run"), ("sr-build", "build"),
                                            ("sr-calibrate", "calibrate")])
def test_help_works_without_torch(command, module):
    proc = _run_blocked(f"""
        from sredge.cli.{module} import main
        try:
            main(['--help'])
        except SystemExit as e:
            sys.exit(e.code)
    """)
    assert proc.returncode == 0, proc.stderr
    assert f"usage: {command}" in proc.stdout


def test_export_without_torch_names_the_extra(tmp_path):
    ckpt = tmp_path / "m.pth"
    ckpt.write_bytes(b"\x80\x02 not really")
    proc = _run_blocked(f"""
        from sredge.cli._app import run
        from sredge.cli.export import PROG, main
        sys.exit(run(PROG, main, [{str(ckpt)!r}, '-o', {str(tmp_path / 'm.onnx')!r}]))
    """)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert 'pip install "sredge[export]"' in proc.stderr


def test_core_requirements_do_not_pull_torch():
    reqs = importlib.metadata.requires("sredge") or []
    core = [r for r in reqs if "extra ==" not in r]
    names = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in core}
    assert {"numpy", "opencv-python-headless", "onnx", "onnxruntime", "av"} <= names
    assert "torch" not in names
    assert any(r.startswith("torch") and 'extra == "export"' in r for r in reqs)


def test_sr_run_on_onnx_never_imports_torch(tmp_path):
    """The lean runtime: an image through ONNX Runtime with torch (and TensorRT) unavailable."""
    from tests.conftest import asset

    img = asset("realworld/0014.jpg")
    onnx_path = tmp_path / "m.onnx"
    from sredge.export.onnx_export import export_onnx
    from sredge.models.archs.espcn import ARCH

    module = ARCH.build(**ARCH.test_config).eval()
    from sredge.models.loader import describe

    export_onnx(module, describe(ARCH, dict(ARCH.test_config), 0), onnx_path)
    out = tmp_path / "o.png"
    proc = _run_blocked(f"""
        from sredge.cli._app import run
        from sredge.cli.run import PROG, main
        code = run(PROG, main, ['--image', {str(img)!r}, '--model', {str(onnx_path)!r}, '-o', {str(out)!r}, '-q'])
        assert sys.modules.get('torch') is None, 'torch was imported'
        sys.exit(code)
    """)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file()


def test_openvino_backend_without_openvino_names_the_extra(tmp_path):
    """sr-run --backend openvino on an install without the openvino extra: exit 2, one line, the pip command."""
    from sredge.runtime.bundled import default_model

    img = tmp_path / "in.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(img), np.full((24, 32, 3), 128, np.uint8))
    proc = _run_blocked(f"""
        sys.modules['openvino'] = None
        from sredge.cli._app import run
        from sredge.cli.run import PROG, main
        sys.exit(run(PROG, main, ['--image', {str(img)!r}, '--model', {str(default_model(2))!r}, '--backend',
                                  'openvino', '-o', {str(tmp_path / 'o.png')!r}]))
    """)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert 'pip install "sredge[openvino]"' in proc.stderr
    assert not (tmp_path / "o.png").exists()
