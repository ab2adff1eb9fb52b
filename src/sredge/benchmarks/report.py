"""Presenting a benchmark report: the terminal table, and a folder with report.json, report.md and images."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from sredge.atomic import write_bytes_atomic
from sredge.benchmarks.plots import bar_chart, grouped_bars, side_by_side


def _fmt(v, spec: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return format(v, spec)


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
        speed = (first["latency"]["median_ms"] / lat["median_ms"]
                 if lat and first and first.get("latency") and r is not first else None)
        tile = "-" if r.get("bicubic") else ("none" if r.get("tile") is None else str(r.get("tile")))
        line = [r["label"], r.get("backend") or "-", r.get("precision") or "-", tile]
        line += [_fmt(q.get("psnr"), ".3f"), _fmt(dpsnr, "+.3f"), _fmt(q.get("ssim"), ".4f")] if has_q else []
        line += [_fmt(q.get("rgb_psnr"), ".3f")] if has_rgb else []
        line += [_fmt(lat.get("median_ms"), ".1f"), _fmt(lat.get("p95_ms"), ".1f"), _fmt(lat.get("p99_ms"), ".1f"),
                 _fmt(lat.get("fps"), ".2f"), _fmt(lat.get("mpix_per_s"), ".2f"),
                 (_fmt(speed, ".2f") + "x") if speed is not None else "-"] if has_lat else []
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
    return "\n".join(out)


def _markdown_table(report: dict) -> str:
    header, cells = table_rows(report)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c) + " |" for c in cells]
    return "\n".join(lines)


def _png(img_rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(img_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def write_report_dir(folder: Path, report: dict, crops: dict[str, list[tuple[str, np.ndarray]]]) -> list[Path]:
    """Write ``report.json``, ``report.md``, ``latency.png``, ``psnr.png`` and ``crops/*.png`` into ``folder``.

    Every file is written atomically. Returns the paths written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def put(name: str, data: bytes) -> str:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data)
        written.append(path)
        return name

    put("report.json", (json.dumps(report, indent=2) + "\n").encode())
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
        md += [f"Latency: {report['settings']['warmup']} warm-up and {report['settings']['repeats']} timed runs "
               f"per row; the reference workload ({report['settings']['reference_workload']}) took "
               f"{report['reference_ms']:.1f} ms in this run.", ""]
    scored = [r for r in rows if r.get("quality")]
    if scored:
        series = {r["label"]: [r["quality"]["images"][n]["psnr"] for n in d["images"]] for r in scored}
        img = grouped_bars(d["images"], series, "Y-PSNR per image (higher is better)", "dB")
        md += [f"![psnr per image]({put('psnr.png', _png(img))})", ""]
        md += ["| image | " + " | ".join(r["label"] for r in scored) + " |", "|---|" + "---|" * len(scored)]
        for n in d["images"]:
            md.append(f"| {n} | " + " | ".join(f"{r['quality']['images'][n]['psnr']:.3f} / "
                                               f"{r['quality']['images'][n]['ssim']:.4f}" for r in scored) + " |")
        md.append("")
    if crops:
        md += ["## Crops (left to right: " + ", ".join(label for label, _ in next(iter(crops.values()))) + ")", ""]
        for name, panels in crops.items():
            md += [f"**{name}**", "", f"![{name}]({put(f'crops/{_slug(name)}.png', _png(side_by_side(panels)))})", ""]
    sw = ", ".join(f"{k} {v}" for k, v in report["software"].items())
    m = report["machine"]
    md += ["## Environment", "", f"- software: {sw}", f"- machine: {m['processor']}, {m['cpu_count']} CPUs, "
           f"{m['platform']}"]
    backends = sorted({r["backend_detail"] for r in rows if r.get("backend_detail")})
    md += [f"- backend: {b}" for b in backends]
    put("report.md", ("\n".join(md) + "\n").encode())
    return written
