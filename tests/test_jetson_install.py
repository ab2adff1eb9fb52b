"""The core install resolves for JetPack 6's Python: CPython 3.10 on linux aarch64, glibc 2.35.

``pip download --only-binary=:all:`` for that platform (every manylinux tag a glibc-2.35 aarch64
pip accepts) of the core ``dependencies`` in pyproject.toml:

* with constraints-jetson.txt (the pins the README's Jetson install line uses),
* with no pins (what ``pip install sredge`` gives a JetPack 6 user today),
* with ``numpy<2`` (the README's camera recipe, which keeps JetPack's own OpenCV, built against
  NumPy 1.x, importable).

Every wheel pip picks must install there: an aarch64 wheel for cp310 (or abi3), or pure Python.
Wheels (about 160 MB) are cached under ~/.cache/sredge-tests/jetson-wheels, so a re-run only
asks the index again (a few seconds). Without a network the tests skip with that reason; a resolution failure
fails them. The check is resolution only: nothing is installed or run on aarch64 here.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYTHON = (3, 10)
GLIBC = (2, 35)  # Ubuntu 22.04, JetPack 6
ARCH = "aarch64"
INDEX = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
CACHE = Path(os.environ.get("SREDGE_TEST_CACHE", Path.home() / ".cache" / "sredge-tests")) / "jetson-wheels"
# pip's words for a network that is not there (as opposed to an index that has no match).
_NETWORK_ERRORS = re.compile(
    r"NewConnectionError|ConnectTimeout|ReadTimeout|ConnectionError|Failed to establish a new connection|"
    r"Temporary failure in name resolution|Name or service not known|Network is unreachable|ProxyError|"
    r"SSLError|Max retries exceeded|Could not fetch URL|connection broken",
    re.IGNORECASE,
)


def platform_tags(glibc: tuple[int, int] = GLIBC, arch: str = ARCH) -> list[str]:
    """The platform tags pip accepts on a glibc ``glibc`` ``arch`` Linux, most specific first.

    PEP 600 ``manylinux_2_X`` for every X from glibc's minor down to 17 (the oldest for aarch64),
    PEP 599's ``manylinux2014`` alias of 2_17, and plain ``linux``. ``pip download --platform``
    does not expand these by itself, so all are passed.
    """
    major, minor = glibc
    return ([f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)]
            + [f"manylinux2014_{arch}", f"linux_{arch}"])


def supported_tags() -> set[Tag]:
    """Every wheel tag a CPython 3.10 on glibc-2.35 aarch64 installs."""
    platforms = platform_tags()
    interp = f"cp{PYTHON[0]}{PYTHON[1]}"
    return set(cpython_tags(PYTHON, abis=[interp], platforms=platforms)) | set(
        compatible_tags(PYTHON, interpreter=interp, platforms=platforms))


def core_dependencies() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def _pins(path: Path) -> dict[str, str]:
    """The exact pins of the core dependencies (other lines constrain optional extras: cuda-python)."""
    core = {canonicalize_name(Requirement(r).name) for r in core_dependencies()}
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and canonicalize_name(Requirement(line).name) in core:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{path.name}: {line} is not an exact pin"
            pins[canonicalize_name(req.name)] = spec.version
    return pins


def _pip_env() -> dict[str, str]:
    """pip as a JetPack user runs it: PyPI (or PIP_INDEX_URL), none of this machine's local wheels or caps."""
    drop = {"PIP_FIND_LINKS", "PIP_CONSTRAINT", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX", "PIP_REQUIRE_VIRTUALENV",
            "PIP_ONLY_BINARY", "PIP_NO_BINARY", "PIP_PLATFORM", "PIP_PYTHON_VERSION"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PIP_CONFIG_FILE"] = os.devnull  # no pip.conf: its find-links, extra indexes and constraints are local
    return env


def _index_reachable() -> str | None:
    """None when the index answers, else why not."""
    try:
        with urllib.request.urlopen(f"{INDEX}/pip/", timeout=15) as resp:
            resp.read(1)
    except (urllib.error.URLError, OSError) as exc:
        return f"{INDEX} is unreachable ({getattr(exc, 'reason', exc)})"
    return None


def pip_download(name: str, requirements: list[str], constraints: Path | None = None) -> dict[str, Path]:
    """Resolve ``requirements`` for JetPack 6 and download the wheels; skip without a network.

    Returns:
        Normalized project name -> wheel path, for every wheel of this resolution.
    """
    why = _index_reachable()
    if why:
        pytest.skip(f"cannot check the Jetson install: {why}")
    # One folder for every resolution: they share most wheels, and pip's output says which are this one's.
    folder = CACHE / "cp310-aarch64"
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--no-input", "--disable-pip-version-check",
           "--retries", "2", "--timeout", "30", "--index-url", INDEX,
           "--python-version", f"{PYTHON[0]}.{PYTHON[1]}", "--implementation", "cp",
           "--abi", f"cp{PYTHON[0]}{PYTHON[1]}", "-d", str(folder)]
    for tag in platform_tags():
        cmd += ["--platform", tag]
    if constraints is not None:
        cmd += ["-c", str(constraints)]
    with open(CACHE / ".lock", "w") as lock:  # pytest-xdist workers share the folder: one pip at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        res = subprocess.run(cmd + requirements, capture_output=True, text=True, timeout=600, env=_pip_env())
    output = res.stdout + res.stderr
    if res.returncode != 0:
        errors = [ln for ln in output.splitlines() if ln.startswith("ERROR")]
        if _NETWORK_ERRORS.search(output):
            pytest.skip(f"cannot check the Jetson install: the network failed during pip download: {errors[-1:]}")
        pytest.fail(f"{name}: the core install does not resolve for cp310 linux aarch64:\n" + "\n".join(errors))
    # "Saved X" for new downloads, "File was already downloaded X" for cached ones.
    wheels = [Path(m) for m in re.findall(r"(?:Saved|File was already downloaded) (\S+\.whl)", output)]
    assert wheels, output
    return {canonicalize_name(parse_wheel_filename(w.name)[0]): folder / w.name for w in wheels}


def _assert_installable(wheels: dict[str, Path]) -> None:
    ok = supported_tags()
    bad = [w.name for w in wheels.values() if not set(parse_wheel_filename(w.name)[3]) & ok]
    assert not bad, f"wheels that do not install on cp310 aarch64 glibc 2.35: {bad}"
    for w in wheels.values():
        assert w.exists(), w
    names = {canonicalize_name(Requirement(r).name) for r in core_dependencies()}
    assert names <= set(wheels), f"core dependencies missing from the resolution: {names - set(wheels)}"


# -- pure parts ----------------------------------------------------------------


def test_platform_tags_for_glibc_2_35_aarch64():
    tags = platform_tags()
    assert tags[0] == "manylinux_2_35_aarch64" and tags[-3:] == [
        "manylinux_2_17_aarch64", "manylinux2014_aarch64", "linux_aarch64"]
    assert len(tags) == 19 + 2
    ok = supported_tags()
    for wheel in ("numpy-2.2.6-cp310-cp310-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
                  "onnx-1.23.2-cp310-cp310-manylinux_2_26_aarch64.manylinux_2_28_aarch64.whl",
                  "opencv_python_headless-5.0.0.93-cp37-abi3-manylinux2014_aarch64.manylinux_2_17_aarch64.whl",
                  "protobuf-7.36.2-cp310-abi3-manylinux2014_aarch64.whl", "sympy-1.14.0-py3-none-any.whl",
                  "x-1.0-cp310-cp310-manylinux_2_35_aarch64.whl"):
        assert set(parse_wheel_filename(wheel)[3]) & ok, wheel
    for wheel in ("numpy-2.4.6-cp311-cp311-manylinux_2_27_aarch64.whl",
                  "numpy-2.2.6-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                  "x-1.0-cp310-cp310-manylinux_2_36_aarch64.whl", "x-1.0-cp310-cp310-musllinux_1_2_aarch64.whl",
                  "x-1.0-cp311-abi3-manylinux_2_28_aarch64.whl"):
        assert not set(parse_wheel_filename(wheel)[3]) & ok, wheel


def test_jetson_constraints_keep_cuda_python_to_jetpack_6s_cuda():
    """cuda-python 13 needs driver 580+; JetPack 6's is 540 (CUDA 12): the trt extra's cuda-python>=12 would
    take 13 (a review)."""
    lines = [Requirement(ln.split("#", 1)[0]) for ln in (ROOT / "constraints-jetson.txt").read_text().splitlines()
             if ln.split("#", 1)[0].strip()]
    (cuda,) = [r for r in lines if canonicalize_name(r.name) == "cuda-python"]
    assert cuda.specifier.contains("12.6.2") and not cuda.specifier.contains("13.0.0")


def test_jetson_constraints_pin_every_core_dependency():
    core = {canonicalize_name(Requirement(r).name): Requirement(r) for r in core_dependencies()}
    pins = _pins(ROOT / "constraints-jetson.txt")
    assert set(pins) == set(core)
    for name, version in pins.items():
        assert core[name].specifier.contains(version), f"{name}=={version} is outside pyproject's {core[name]}"


# -- resolution against the index ----------------------------------------------------


@pytest.mark.slow
def test_core_install_resolves_with_the_jetson_pins():
    constraints = ROOT / "constraints-jetson.txt"
    wheels = pip_download("pinned", core_dependencies(), constraints)
    _assert_installable(wheels)
    for name, version in _pins(constraints).items():
        assert parse_wheel_filename(wheels[name].name)[1] == Version(version), name


@pytest.mark.slow
def test_core_install_resolves_unpinned():
    _assert_installable(pip_download("unpinned", core_dependencies()))


@pytest.mark.slow
def test_camera_recipe_with_numpy_1_resolves():
    wheels = pip_download("numpy1", [*core_dependencies(), "numpy<2"])
    _assert_installable(wheels)
    assert parse_wheel_filename(wheels["numpy"].name)[1].major == 1


# -- the check itself can fail, and tells a network failure from a resolution failure --------


@pytest.mark.slow
def test_a_pin_without_cp310_wheels_fails_the_check():
    # numpy 2.4 dropped Python 3.10: constraints.txt's desktop pin cannot resolve on JetPack 6.
    with pytest.raises(pytest.fail.Exception, match="does not resolve for cp310 linux aarch64"):
        pip_download("impossible", ["numpy==2.4.6"])


def test_an_unreachable_index_skips(monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "INDEX", "http://127.0.0.1:9/simple")
    with pytest.raises(pytest.skip.Exception, match="unreachable"):
        pip_download("offline", ["numpy"])


@pytest.mark.slow
def test_a_network_failure_inside_pip_skips(monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "INDEX", "http://127.0.0.1:9/simple")
    monkeypatch.setattr(sys.modules[__name__], "_index_reachable", lambda: None)
    with pytest.raises(pytest.skip.Exception, match="the network failed during pip download"):
        pip_download("offline", ["numpy"])
