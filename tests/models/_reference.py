"""Load an architecture's authors' code from outside the project, for equivalence tests.

The authors' code is never part of sredge. A developer who has the authors' repositories
checked out (``$SREDGE_REFERENCE_CODE/<owner>/<repo>/<path>``) can run the equivalence
tests: our implementation and theirs, given the same random weights, must agree within
1e-5. Without that directory the tests skip with the reason; CI covers the same
architectures through the real checkpoints' Set5 PSNR instead (tests/export).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

ENV = "SREDGE_REFERENCE_CODE"


def reference_root() -> Path | None:
    """The folder holding the authors' repositories, or None when not configured."""
    root = os.environ.get(ENV)
    return Path(root) if root else None


def load_reference(repo: str, path: str, extra_paths: tuple[str, ...] = ()) -> ModuleType:
    """Import ``<root>/<repo>/<path>`` as a module; skips the test when it is absent.

    Args:
        repo: ``owner/name`` of the authors' repository, e.g. ``"ofsoundof/NTIRE2022_ESR"``.
        path: The file inside it, e.g. ``"models/team04_rlfn.py"``.
        extra_paths: Folders inside the repository to put on ``sys.path`` first (for the
            file's own relative imports).
    """
    root = reference_root()
    if root is None:
        pytest.skip(f"authors' code not configured: set {ENV} to a folder holding {repo}/{path}")
    file = root / repo / path
    if not file.exists():
        pytest.skip(f"authors' code not found: {file} (from github.com/{repo})")
    for extra in (file.parent, *(root / repo / p for p in extra_paths)):
        if str(extra) not in sys.path:
            sys.path.insert(0, str(extra))
    name = "_ref_" + f"{repo}_{path}".replace("/", "_").replace(".", "_").replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
