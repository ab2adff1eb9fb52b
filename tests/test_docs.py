"""The README and docs/ are executed: every shell command in them runs here, and every options table matches --help.

Conventions for the pages (README.md, "Writing the docs", says the same):

* Fenced ```sh / ```bash blocks are commands and run; other fences (```text, plain ```) are output
  or illustrations and do not.
* A page's blocks run in order, in one fresh temporary folder, with ``bash -eu -o pipefail``; a block
  may use files that earlier blocks of the same page made (if those needed no more than it does).
  ``python``, ``sr-*`` and ``make`` are the test environment's.
* A block that cannot run everywhere says so on a line ``# needs: WHAT[, WHAT]``; it is skipped with
  that reason where WHAT is missing. ``$SREDGE_ASSETS`` is the real assets folder (``../shared/assets``
  unless the variable is set): a block that uses it needs ``assets``.
* A block runs as on the core install: torch, OpenVINO and TensorRT cannot be imported unless its
  ``# needs:`` line names them (``torch``, ``openvino``, ``trt``).
* README.md is the front page: its commands run with no assets at all (``SREDGE_ASSETS`` pointing at
  an empty folder), so a fresh clone can follow it.
* A table whose header starts with ``option`` (or ``\\`build\\` option`` for a subcommand) on
  ``docs/sr-X.md`` lists exactly the options of ``sr-X --help``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ASSETS, ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND_PAGES = {"sr-export": "export", "sr-run": "run", "sr-bench": "bench", "sr-calibrate": "calibrate",
                 "sr-build": "build", "sr-train": "train", "sr-models": "models"}
RUN_LANGS = {"sh", "bash", "shell"}
BLOCK_TIMEOUT_S = 300


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _gpu() -> bool:
    return shutil.which("nvidia-smi") is not None and subprocess.run(
        ["nvidia-smi", "-L"], check=False, capture_output=True).returncode == 0


def _trt_major() -> int:
    import tensorrt

    return int(tensorrt.__version__.split(".")[0])


NEEDS = {
    "assets": (lambda: ASSETS.is_dir(), f"the real assets folder ({ASSETS}, set SREDGE_ASSETS)"),
    "torch": (lambda: _have("torch"), 'torch (pip install "sredge[export]")'),
    "openvino": (lambda: _have("openvino"), 'OpenVINO (pip install "sredge[openvino]")'),
    "gpu": (_gpu, "an NVIDIA GPU and its driver"),
    "trt": (lambda: _have("tensorrt") and _gpu(), 'TensorRT and a GPU (pip install "sredge[trt]")'),
    "trt10": (lambda: _have("tensorrt") and _gpu() and _trt_major() == 10, "TensorRT 10 and a GPU"),
    "jetson": (lambda: Path("/etc/nv_tegra_release").exists(), "a Jetson board"),
    "camera": (lambda: False, "a camera (not attached to the test machines)"),
    "display": (lambda: False, "a display"),
    "stream": (lambda: False, "a live RTSP/HTTP stream"),
    "setup": (lambda: False, ("a fresh machine: it creates virtualenvs and downloads packages "
                              "(test_make_targets checks what they run)")),
}
"""Everything a ``# needs:`` line may name: (is it here?, what is missing, for the skip reason)."""


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    """1-based line of the opening fence."""
    lang: str
    text: str
    needs: tuple[str, ...]

    @property
    def where(self) -> str:
        name = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page.name
        return f"{name}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a markdown page, in order."""
    found, lang, start, body = [], None, 0, []
    for n, line in enumerate(page.read_text().splitlines(), 1):
        fence = re.match(r"^\s*```\s*([\w-]*)", line)
        if fence and lang is None:
            lang, start, body = fence.group(1).lower(), n, []
        elif fence and line.strip() == "```":
            text = "\n".join(body) + "\n"
            needs = tuple(w.strip() for m in re.finditer(r"^\s*# needs:(.*)$", text, re.MULTILINE)
                          for w in m.group(1).split(",") if w.strip())
            found.append(Block(page, start, lang, text, needs))
            lang = None
        elif lang is not None:
            body.append(line)
    assert lang is None, f"{page.name}: the fence opened on line {start} is never closed"
    return found


def runnable(page: Path) -> list[Block]:
    return [b for b in blocks(page) if b.lang in RUN_LANGS]


def _env(tmp: Path, assets: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["SREDGE_ASSETS"] = str(assets)
    env["HOME"] = str(tmp / "home")  # caches (~/.cache/sredge) stay in the test's folder
    # One OpenMP thread for torch: the test runs beside other workers, and spinning OpenMP threads on a busy
    # machine cost sr-train ten times the CPU (83 s against 8 s for the README's toy run, measured).
    env["OMP_NUM_THREADS"] = "1"
    env.pop("SREDGE_DEBUG", None)
    return env


EXTRAS = {"torch": ("torch", "onnxscript", "onnxslim", "safetensors"), "openvino": ("openvino",),
          "trt": ("tensorrt",), "trt10": ("tensorrt",), "gpu": ("torch",)}
"""The optional packages a ``# needs:`` word lets a block import; every other block runs as on the core install."""

_BLOCKER = """import sys

BLOCKED = {blocked!r}


class _Hidden:
    \"\"\"Wraps an import finder so that the blocked packages look not installed (find_spec -> None).\"\"\"

    def __init__(self, finder):
        self._finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            return None
        find = getattr(self._finder, "find_spec", None)
        return find(name, path, target) if find is not None else None

    def __getattr__(self, attr):
        return getattr(self._finder, attr)


sys.meta_path[:] = [_Hidden(f) for f in sys.meta_path]
"""


def core_only(block: Block, tmp: Path) -> Path:
    """A folder with a ``sitecustomize.py`` that makes the optional packages the block does not need unimportable."""
    allowed = {m for n in block.needs for m in EXTRAS.get(n, ())}
    blocked = sorted({m for ms in EXTRAS.values() for m in ms} - allowed)
    folder = tmp / ("site-" + "-".join(sorted(allowed)) if allowed else "site-core")
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(_BLOCKER.format(blocked=tuple(blocked)))
    return folder


def run_page(page: Path, tmp: Path, assets: Path) -> tuple[list[Block], list[str]]:
    """Run a page's command blocks in order in ``tmp/work``; returns (blocks run, skip reasons)."""
    work = tmp / "work"
    (tmp / "home").mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    env = _env(tmp, assets)
    ran, skipped = [], []
    for block in runnable(page):
        missing = [NEEDS[n][1] for n in block.needs if not NEEDS[n][0]()]
        if missing:
            skipped.append(f"{block.where} needs {', '.join(missing)}")
            continue
        # torch & co. only where the block says it needs them
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(core_only(block, tmp)), os.environ.get("PYTHONPATH")) if p)
        proc = subprocess.run(["bash", "-eu", "-o", "pipefail", "-c", block.text], check=False, cwd=work, env=env,
                              capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)
        assert proc.returncode == 0, (
            f"{block.where}: exit {proc.returncode}\n--- block\n{block.text}--- stdout\n{proc.stdout[-3000:]}"
            f"--- stderr\n{proc.stderr[-3000:]}")
        ran.append(block)
    return ran, skipped


# ----------------------------------------------------------------------------- the pages' own rules


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_blocks_declare_what_they_need(page):
    for block in runnable(page):
        unknown = [n for n in block.needs if n not in NEEDS]
        assert not unknown, f"{block.where}: unknown '# needs: {', '.join(unknown)}' (known: {', '.join(NEEDS)})"
        if re.search(r"\$\{?(SREDGE_)?ASSETS\b|shared/assets", block.text):
            assert "assets" in block.needs, f"{block.where} uses $SREDGE_ASSETS: add '# needs: assets'"
        assert "shared/assets" not in block.text, f"{block.where}: write $SREDGE_ASSETS, not the shared folder's path"


def test_front_page_needs_nothing_but_the_package():
    """README.md is what a fresh clone follows: no block may need the assets."""
    readme = runnable(ROOT / "README.md")
    assert readme, "README.md has no ```sh blocks"
    for block in readme:
        assert "assets" not in block.needs and "ASSETS" not in block.text, f"{block.where} needs the assets"


def test_every_command_has_its_page():
    for name in COMMAND_PAGES:
        page = ROOT / "docs" / f"{name}.md"
        assert page.is_file(), f"{page.relative_to(ROOT)} is missing"
        assert f"docs/{name}.md" in (ROOT / "README.md").read_text(), f"README.md does not link docs/{name}.md"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_between_pages_resolve(page):
    """Every relative link (``[text](docs/sr-run.md#anchor)``) names a file that exists."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        path = target.split("#")[0]
        if path and not re.match(r"^[a-z]+:", path) and not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {', '.join(broken)}"


def test_make_targets_run_what_the_readme_says():
    """``make demo`` installs only the core (no extras) into its own venv; ``make test`` is the suite as CI runs it."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # --no-print-directory: under `make test` (CI) the nested make would print "Entering directory" lines.
    demo = subprocess.run(["make", "--no-print-directory", "-n", "-B", "demo"], check=False, cwd=ROOT,
                          capture_output=True, text=True)
    assert demo.returncode == 0, demo.stderr
    installs = [line for line in demo.stdout.splitlines() if "pip install" in line]
    assert installs and all("-c constraints.txt -e ." in line and "[" not in line for line in installs), demo.stdout
    assert "-m sredge.demo" in demo.stdout
    test = subprocess.run(["make", "--no-print-directory", "-n", "test"], check=False, cwd=ROOT,
                          capture_output=True, text=True)
    assert test.returncode == 0, test.stderr
    assert test.stdout.strip().splitlines()[-1].endswith("-m pytest -n 2 --durations=15"), test.stdout


# ----------------------------------------------------------------------------- running the commands


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_commands_run(page, tmp_path):
    """Every ```sh block of the page runs and exits 0 (README.md: with no assets anywhere)."""
    if not runnable(page):
        pytest.skip(f"{page.name} has no commands")
    front = page.name == "README.md"
    assets = tmp_path / "no-assets" if front else ASSETS
    ran, skipped = run_page(page, tmp_path, assets)
    if skipped:
        pytest.skip(f"{len(ran)} block(s) ran and passed; skipped: {'; '.join(skipped)}")


def test_blocks_run_as_on_the_core_install(tmp_path):
    """A block that imports torch without saying so fails here, as it would on a core install."""
    page = tmp_path / "page.md"
    page.write_text("```sh\npython -c 'import sredge.cli.run; import torch'\n```\n")
    with pytest.raises(AssertionError, match="No module named 'torch'"):
        run_page(page, tmp_path / "a", tmp_path / "no-assets")
    if not _have("torch"):
        pytest.skip("torch is not installed: the declared case cannot run here")
    page.write_text("```sh\n# needs: torch\npython -c 'import torch'\n```\n")
    ran, skipped = run_page(page, tmp_path / "b", tmp_path / "no-assets")
    assert len(ran) == 1 and not skipped


# ----------------------------------------------------------------------------- options tables vs --help


def _parser(command: str, sub: str | None):
    import argparse

    parser = importlib.import_module(f"sredge.cli.{COMMAND_PAGES[command]}").build_parser()
    if sub is None:
        return parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[sub]
    raise AssertionError(f"{command} has no subcommands, but its page has a '{sub}' options table")


def help_options(parser) -> dict[str, tuple[str, ...]]:
    """``{main option string: every option string of it}`` as ``--help`` shows them (not -h, nor --version, which
    every command has: README says so once)."""
    import argparse

    found = {}
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS or \
                {"--help", "--version"} & set(action.option_strings):
            continue
        found[max(action.option_strings, key=len)] = tuple(action.option_strings)
    return found


_OPTION = re.compile(r"(?:^|[\s,/(])(--?[A-Za-z][\w-]*)")


def documented_options(page: Path) -> dict[str | None, set[str]]:
    """``{subcommand or None: option strings}`` from the page's options tables (first column, in backticks)."""
    tables: dict[str | None, set[str]] = {}
    current: set[str] | None = None
    lines = page.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.lstrip().startswith("|"):
            current = None
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]  # "\|" is a pipe in a cell
        if current is None:
            header = cells[0].lower().replace("`", "").strip()
            is_sep = i + 1 < len(lines) and re.match(r"^\s*\|[\s:|-]+\|\s*$", lines[i + 1])
            if is_sep and re.search(r"\boptions?$", header):
                words = header.split()
                sub = words[-2] if len(words) >= 2 and not words[-2].startswith("sr-") else None
                current = tables.setdefault(sub, set())
            else:
                current = set()  # some other table: collect into a throwaway set
            continue
        if re.match(r"^[\s:-]*$", cells[0]):
            continue
        for span in re.findall(r"`([^`]*)`", cells[0].replace("\\|", "|")):
            current.update(_OPTION.findall(span))
    return tables


@pytest.mark.parametrize("command", sorted(COMMAND_PAGES))
def test_options_tables_match_help(command):
    page = ROOT / "docs" / f"{command}.md"
    if not page.is_file():
        pytest.fail(f"docs/{command}.md is missing")
    tables = documented_options(page)
    assert tables, f"docs/{command}.md has no options table (a table whose header starts with 'option')"
    problems = []
    for sub, listed in sorted(tables.items(), key=lambda kv: kv[0] or ""):
        shown = help_options(_parser(command, sub))
        strings = {s for group in shown.values() for s in group}
        name = f"{command} {sub}" if sub else command
        extra = sorted(listed - strings)
        missing = sorted(opt for opt, group in shown.items() if not listed & set(group))
        problems += [f"docs/{command}.md lists {o}, which `{name} --help` does not have" for o in extra]
        problems += [f"`{name} --help` has {o}, missing from the table in docs/{command}.md" for o in missing]
    assert not problems, "\n".join(problems)
