"""Presenting a benchmark report: the terminal table, and a folder with report.json, report.md and images."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from sredge.atomic import atomic_files, write_bytes_atomic
from sredge.benchmarks.plots import bar_chart, grouped_bars, side_by_side
from sredge.runtime.timing import INCONCLUSIVE_SPREAD, Ratio


def _fmt(v, spec: str) -> str:
    """``v`` formatted; ``-`` for no figure, ``inf`` for an infinite PSNR (the image reproduced exactly)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def report_json(report: dict) -> bytes:
    """``report`` as strict JSON (RFC 8259, which has no Infinity): what ``--json``, ``--save-baseline``
    and ``report.json`` hold.

    A PSNR is infinite when a model reproduces an image exactly; it is written as ``null`` (any other
    non-finite figure would be too, though sr-bench refuses NaN before a report is made), and
    :func:`read_report_json` reads it back as infinite.
    """
    return (json.dumps(_finite(report), indent=2, allow_nan=False) + "\n").encode()


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def read_report_json(text: str) -> dict:
    """A report written by :func:`report_json` (or by sredge before it, with ``Infinity``), as sr-bench made it.

    A ``null`` PSNR of a model row's scores is infinite again; everything else is read as written.

    Raises:
        ValueError: Not JSON.
    """
    data = json.loads(text)
    rows = data.get("rows") if isinstance(data, dict) else None
    for row in rows if isinstance(rows, list) else []:
        quality = row.get("quality") if isinstance(row, dict) else None
        if not isinstance(quality, dict):
            continue
        images = quality.get("images")
        scores = [quality.get("mean")] + (list(images.values()) if isinstance(images, dict) else [])
        for s in scores:
            if isinstance(s, dict) and "psnr" in s and s["psnr"] is None:
                s["psnr"] = math.inf
    return data


def _md(text: str) -> str:
    """``text`` safe in a markdown table cell (a model or image name may hold ``|``)."""
    return str(text).replace("|", "\\|")


def _speed(row: dict, first: dict | None) -> str:
    """The speed cell: the interleaved speed-up over the first model row with its interquartile range
    (``1.52x (1.40-1.61)``, ``inconclusive`` when the range straddles 1 or is wide), ``-`` for the first row.
    A report from before interleaved timing has only medians: their plain ratio, marked ``(no spread)``."""
    lat = row.get("latency") or {}
    if not lat or first is None or row is first or not first.get("latency"):
        return "-"
    sp = lat.get("speedup")
    if sp is not None:
        return Ratio(sp["median"], sp["low"], sp["high"], sp["rounds"]).describe()
    return f"{first['latency']['median_ms'] / lat['median_ms']:.2f}x (no spread)"


def table_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the summary table (pure). Deltas and speed are relative to the first model row."""
    rows = report["rows"]
    first = next((r for r in rows if not r.get("bicubic")), None)
    has_rgb = any("rgb_psnr" in (r.get("quality") or {}).get("mean", {}) for r in rows)
    has_q = any(r.get("quality") for r in rows)
    has_lat = any(r.get("latency") for r in rows)
    header = ["model", "backend", "precision", "tile"]
    header += ["Y-PSNR", "dPSNR", "Y-SSIM"] if has_q else []
    header += ["RGB-PSNR"] if has_rgb else []
    header += ["median ms", "p95 ms", "p99 ms", "fps", "MP/s", "speed"] if has_lat else []
    cells = []
    for r in rows:
        q = (r.get("quality") or {}).get("mean", {})
        lat = r.get("latency") or {}
        fq = (first.get("quality") or {}).get("mean", {}) if first else {}
        dpsnr = (q["psnr"] - fq["psnr"]) if ("psnr" in q and "psnr" in fq and r is not first) else None
        tile = "-" if r.get("bicubic") else ("none" if r.get("tile") is None else str(r.get("tile")))
        line = [r["label"], r.get("backend") or "-", r.get("precision") or "-", tile]
        line += [_fmt(q.get("psnr"), ".3f"), _fmt(dpsnr, "+.3f"), _fmt(q.get("ssim"), ".4f")] if has_q else []
        line += [_fmt(q.get("rgb_psnr"), ".3f")] if has_rgb else []
        line += [_fmt(lat.get("median_ms"), ".1f"), _fmt(lat.get("p95_ms"), ".1f"), _fmt(lat.get("p99_ms"), ".1f"),
                 _fmt(lat.get("fps"), ".2f"), _fmt(lat.get("mpix_per_s"), ".2f"), _speed(r, first)] if has_lat else []
        cells.append(line)
    return header, cells


def format_table(report: dict) -> str:
    """The summary as an aligned plain-text table, with a title line naming the dataset."""
    header, cells = table_rows(report)
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    numeric = [i >= 4 for i in range(len(header))]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    d = report["dataset"]
    title = f"{d['name']} x{d['scale']} ({len(d['images'])} images, {d['lr_source']} LR), Y channel, crop {d['scale']}"
    ref = report.get("reference_ms")
    if ref:
        h, w = report["settings"]["latency_hw"]
        title += f"; latency on a {w}x{h} frame, reference workload {ref:.1f} ms"
    out = [title, line(header), line(["-" * w for w in widths])] + [line(c) for c in cells]
    if ref:
        out.append(f"speed: the first model row's time / this row's, median of {report['settings']['repeats']} "
                   "interleaved rounds (interquartile range); fps = 1000 / median ms, one frame at a time")
    return "\n".join(out)


def _markdown_table(report: dict) -> str:
    header, cells = table_rows(report)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(_md, c)) + " |" for c in cells]
    return "\n".join(lines)


def psnr_series(report: dict) -> tuple[dict[str, list[float]], str]:
    """What the PSNR chart plots, and its title (pure): with a bicubic row, every model's Y-PSNR gain
    over bicubic per image (bars start at 0 = bicubic); without one, the Y-PSNR itself (bars from 0 dB).
    Either way a bar's length is proportional to what it shows."""
    d = report["dataset"]
    scored = [r for r in report["rows"] if r.get("quality")]
    bic = next((r for r in scored if r.get("bicubic")), None)
    if bic is None:
        return ({r["label"]: [r["quality"]["images"][n]["psnr"] for n in d["images"]] for r in scored},
                "Y-PSNR per image (higher is better)")
    base = [bic["quality"]["images"][n]["psnr"] for n in d["images"]]
    return ({r["label"]: [r["quality"]["images"][n]["psnr"] - b for n, b in zip(d["images"], base)]
             for r in scored if r is not bic},
            "Y-PSNR gain over bicubic per image (0 = bicubic, higher is better)")


def latency_notes(report: dict) -> str:
    """The paragraph under the latency chart: how it was timed, what the speed column means, and why
    these figures are not sr-run's video fps (pure)."""
    st = report["settings"]
    return (f"Latency: every row and the reference workload ({st['reference_workload']}, "
            f"{report['reference_ms']:.1f} ms median here) were timed against each other: {st['warmup']} warm-up "
            f"runs each, then {st['repeats']} interleaved rounds. The speed column is the median over rounds of "
            "the first model row's time divided by this row's, with the interquartile range in brackets; it says "
            f"inconclusive when that range contains 1.0 or is wider than {INCONCLUSIVE_SPREAD:.0%} of the median. "
            "Each figure is one frame at a time, so fps = 1000 / median ms. sr-run --video overlaps decoding, "
            "inference and encoding: its fps can be higher, and its end_to_end latency is several frames long "
            "(frames in flight x time per frame), which is pipeline depth, not slowness.")


def _png(img_rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(img_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def crop_names(images: list[str]) -> dict[str, str]:
    """A crop file name per image name, unique even where two names make the same slug (``b c`` and
    ``b_c``) or differ only in case (one file on macOS and Windows): later ones get ``-2``, ``-3``, ..."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in images:
        base = slug = _slug(name)
        n = 1
        while slug.lower() in taken:
            n += 1
            slug = f"{base}-{n}"
        taken.add(slug.lower())
        out[name] = f"{slug}.png"
    return out


def write_report_dir(folder: Path, report: dict, crops: dict[str, list[tuple[str, np.ndarray]]]) -> list[Path]:
    """Write ``report.json``, ``report.md``, ``latency.png``, ``psnr.png`` and ``crops/*.png`` into ``folder``.

    The files are written together (:func:`~sredge.atomic.atomic_files`): a stopped or failed run leaves
    the folder's previous report whole, and a new report replaces the previous one's figures and crops,
    so the folder never mixes two runs. Returns the paths written.
    """
    with atomic_files(folder, stale=_previous_report(folder)) as staging:
        return _write_report_files(staging, folder, report, crops)


def _previous_report(folder: Path) -> list[Path]:
    """The figures and crops an earlier sr-bench report in ``folder`` wrote: the two figure names and the
    crop names of the images its ``report.json`` lists. None unless that file is an sr-bench report, and
    never another file of ``crops/``: a picture a user keeps there is not sredge's to remove."""
    try:
        previous = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        images = previous["dataset"]["images"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if not ("sredge_report" in previous and isinstance(images, list) and all(isinstance(n, str) for n in images)):
        return []
    return [folder / "latency.png", folder / "psnr.png", *(folder / "crops" / n for n in crop_names(images).values())]


def _write_report_files(staging: Path, folder: Path, report: dict,
                        crops: dict[str, list[tuple[str, np.ndarray]]]) -> list[Path]:
    written = []

    def put(name: str, data: bytes) -> str:
        path = staging / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data)
        written.append(folder / name)
        return name

    put("report.json", report_json(report))
    rows = report["rows"]
    d = report["dataset"]
    md = [f"# sr-bench: {d['name']} x{d['scale']}", "",
          f"{len(d['images'])} images ({d['lr_source']} LR). Y-PSNR / Y-SSIM on the BT.601 Y channel, "
          f"{d['scale']} pixels cropped from every border. Created {report['created']}.", "",
          _markdown_table(report), ""]
    timed = [r for r in rows if r.get("latency")]
    if timed:
        h, w = report["settings"]["latency_hw"]
        img = bar_chart([r["label"] for r in timed], [r["latency"]["median_ms"] for r in timed],
                        f"median latency, {w}x{h} frame (lower is better)", "ms")
        md += [f"![latency]({put('latency.png', _png(img))})", ""]
        md += [latency_notes(report), ""]
    scored = [r for r in rows if r.get("quality")]
    if scored:
        series, title = psnr_series(report)
        img = grouped_bars(d["images"], series, title, "dB")
        md += [f"![psnr per image]({put('psnr.png', _png(img))})", ""]
        md += ["| image | " + " | ".join(_md(r["label"]) for r in scored) + " |", "|---|" + "---|" * len(scored)]
        for n in d["images"]:
            md.append(f"| {_md(n)} | " + " | ".join(f"{r['quality']['images'][n]['psnr']:.3f} / "
                                               f"{r['quality']['images'][n]['ssim']:.4f}" for r in scored) + " |")
        md.append("")
    if crops:
        md += ["## Crops (left to right: " + ", ".join(label for label, _ in next(iter(crops.values()))) + ")", ""]
        files = crop_names(list(crops))
        for name, panels in crops.items():
            md += [f"**{name}**", "", f"![{name}]({put(f'crops/{files[name]}', _png(side_by_side(panels)))})", ""]
    sw = ", ".join(f"{k} {v}" for k, v in report["software"].items())
    m = report["machine"]
    flags = " ".join(m.get("cpu_flags") or []) or "none of note"
    md += ["## Environment", "", f"- software: {sw}", f"- machine: {m['processor']}, {m['cpu_count']} CPUs, "
           f"{m['platform']}", f"- CPU flags (INT8/bf16 speed): {flags}"]
    md += [f"- backend of {r['label']}: {r['backend_detail']}" for r in rows if r.get("backend_detail")]
    put("report.md", ("\n".join(md) + "\n").encode())
    return written
