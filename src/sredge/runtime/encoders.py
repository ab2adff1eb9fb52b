"""Which FFmpeg encoder writes ``sr-run``'s video, and the options each one takes.

Pure decisions: the encoders ``--encoder auto`` tries, in order, per platform
(:func:`auto_candidates`); ``--crf``/``--preset``/threads/latency tuning mapped to each
encoder's own options (:func:`encoder_options`); the choice given a probe
(:func:`choose_encoder`). Side effects live in two small functions: :func:`probe_encoder`
opens a tiny encoder context to see whether an encoder works here (``h264_nvenc`` is compiled
into PyAV's FFmpeg but opens only with an NVIDIA GPU that has NVENC, and its driver), and
:func:`is_jetson` looks at the machine.

Why hardware first only off Jetson: PyAV's FFmpeg reaches NVENC through the desktop driver's
``libnvidia-encode``, which Jetson boards do not have (their encoder is reached through
GStreamer's ``nvv4l2h264enc``), and the Orin Nano has no hardware encoder at all; so on Jetson
``auto`` is software x264 without probing anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from sredge.errors import InputError

X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo",
)  # fmt: skip
"""x264/x265 speed presets, fastest first."""
NVENC_PRESETS = ("p1", "p2", "p3", "p4", "p5", "p6", "p7")
"""NVENC speed presets, fastest (p1) to best (p7)."""

# x264 preset -> the NVENC preset of about the same place on the speed/quality scale.
_X264_TO_NVENC = {
    "ultrafast": "p1", "superfast": "p2", "veryfast": "p3", "faster": "p3", "fast": "p4",
    "medium": "p4", "slow": "p5", "slower": "p6", "veryslow": "p7", "placebo": "p7",
}  # fmt: skip


@dataclass(frozen=True)
class Encoder:
    """An FFmpeg video encoder sredge knows how to set up.

    Attributes:
        name: FFmpeg encoder name, e.g. ``"h264_nvenc"``.
        family: ``"x264"``, ``"x265"`` or ``"nvenc"``: which option names it takes.
        codec: The bitstream it writes, ``"h264"`` or ``"hevc"``.
        hardware: Runs on a hardware encoder block rather than the CPU.
    """

    name: str
    family: str
    codec: str
    hardware: bool


ENCODERS: dict[str, Encoder] = {
    e.name: e
    for e in (
        Encoder("libx264", "x264", "h264", False),
        Encoder("h264_nvenc", "nvenc", "h264", True),
        Encoder("libx265", "x265", "hevc", False),
        Encoder("hevc_nvenc", "nvenc", "hevc", True),
    )
}
"""Encoders ``--encoder`` accepts by name."""
ENCODER_CHOICES = ("auto", *ENCODERS)
"""Values of ``sr-run --encoder``."""

PROBE_SIZE = (1280, 720)
"""(width, height) a probe opens the encoder at: any size every encoder accepts."""


def auto_candidates(jetson: bool, crf: int) -> tuple[str, ...]:
    """Encoders ``--encoder auto`` tries, in order; the last always works with PyAV's FFmpeg.

    Args:
        jetson: The machine is a Jetson board (see :func:`is_jetson`).
        crf: The quality asked for; 0 (lossless) is x264's own, so hardware is not tried.
    """
    if jetson or crf == 0:
        return ("libx264",)
    return ("h264_nvenc", "libx264")


def encoder_options(name: str, crf: int = 18, preset: str = "veryfast", threads: int = 0,
                    tune: str | None = None) -> dict[str, str]:
    """The FFmpeg options that carry ``--crf``, ``--preset``, threads and tuning to ``name``.

    x264/x265 take them as they are. NVENC gets constant-quality VBR with ``cq`` = ``crf``
    (the same 0..51 quantizer scale, roughly the same quality) and the x264 preset mapped to
    ``p1``..``p7`` (or a ``p1``..``p7`` given directly); ``tune="zerolatency"`` becomes
    NVENC's ultra-low-latency tuning without B-frames. An encoder sredge does not know gets
    ``crf`` and ``preset`` as before.

    Args:
        name: FFmpeg encoder name.
        crf: Quality, 0 (lossless) .. 51.
        preset: An x264 preset name (see :data:`X264_PRESETS`), or for NVENC also ``p1``..``p7``.
        threads: Encoder threads, 0 for the encoder's choice (NVENC uses none).
        tune: ``"zerolatency"`` (no frame held back), another tune the encoder knows, or None.

    Raises:
        InputError: A crf out of range, a preset or tune the encoder does not have, or lossless NVENC.
    """
    if not 0 <= int(crf) <= 51:
        raise InputError(f"crf must be between 0 and 51, got {crf}")
    enc = ENCODERS.get(name)
    family = enc.family if enc else None
    if family == "nvenc":
        if crf == 0:
            raise InputError(f"--crf 0 (lossless) is not available with {name}: use --encoder libx264")
        nv_preset = _X264_TO_NVENC.get(preset, preset)
        if nv_preset not in NVENC_PRESETS:
            raise InputError(f"unknown {name} preset {preset!r}: use one of {', '.join(X264_PRESETS + NVENC_PRESETS)}")
        options = {"rc": "vbr", "cq": str(crf), "preset": nv_preset}
        if tune == "zerolatency":
            options.update(tune="ull", zerolatency="1", bf="0")
        elif tune is not None:
            if tune not in ("hq", "ll", "ull"):
                raise InputError(f"unknown {name} tune {tune!r}: use zerolatency, hq, ll or ull")
            options["tune"] = tune
        return options
    if family in ("x264", "x265") and preset not in X264_PRESETS:
        raise InputError(f"unknown {name} preset {preset!r}: use one of {', '.join(X264_PRESETS)}")
    options = {"crf": str(crf), "preset": preset}
    if threads:
        options["threads"] = str(threads)
    if tune:
        options["tune"] = tune
    if family == "x265":
        options["x265-params"] = "log-level=error"  # x265 prints its settings to stderr otherwise
    return options


@dataclass(frozen=True)
class EncoderChoice:
    """The encoder a run uses and how it was chosen (for the stderr line and the run report).

    Attributes:
        name: FFmpeg encoder name the video is written with.
        requested: What ``--encoder`` said (``"auto"`` or a name).
        hardware: ``name`` runs on a hardware encoder.
        passed_over: ``(encoder, why)`` for each ``auto`` candidate tried before ``name``.
    """

    name: str
    requested: str
    hardware: bool
    passed_over: tuple[tuple[str, str], ...] = field(default=())

    def summary(self) -> str:
        """One line, e.g. ``"encoder libx264 (software; h264_nvenc did not open: ...)"``."""
        kind = "hardware" if self.hardware else "software"
        why = "; ".join(f"{n} {reason}" for n, reason in self.passed_over)
        return f"encoder {self.name} ({kind}{'; ' + why if why else ''})"

    def as_dict(self) -> dict:
        """For the run report."""
        return {"name": self.name, "requested": self.requested, "hardware": self.hardware,
                "passed_over": {n: why for n, why in self.passed_over}}


Probe = Callable[[str], "str | None"]
"""``probe(encoder_name)`` -> None when it opens with the run's options, else why not (one line)."""


def choose_encoder(requested: str, candidates: Sequence[str], probe: Probe) -> EncoderChoice:
    """Pick the encoder (pure given ``probe``).

    ``auto`` takes the first of ``candidates`` that opens. A named encoder must open.

    Args:
        requested: ``"auto"`` or a key of :data:`ENCODERS`.
        candidates: What ``auto`` tries, in order (see :func:`auto_candidates`).
        probe: Tries one encoder (see :data:`Probe`).

    Raises:
        InputError: An unknown name; a named encoder (or every ``auto`` candidate) that does
            not open here; the message names the encoders that do.
    """
    if requested != "auto":
        if requested not in ENCODERS:
            raise InputError(f"unknown encoder {requested!r}: use one of {', '.join(ENCODER_CHOICES)}")
        why = probe(requested)
        if why is None:
            return EncoderChoice(requested, requested, ENCODERS[requested].hardware)
        raise InputError(f"--encoder {requested} {why}; {_working(probe, exclude=requested)}")
    passed: list[tuple[str, str]] = []
    for name in candidates:
        why = probe(name)
        if why is None:
            return EncoderChoice(name, "auto", ENCODERS[name].hardware, tuple(passed))
        passed.append((name, why))
    tried = "; ".join(f"{n} {why}" for n, why in passed)
    raise InputError(f"no video encoder opened ({tried}); {_working(probe, exclude=None)}")


def _working(probe: Probe, exclude: str | None) -> str:
    works = [n for n in ENCODERS if n != exclude and probe(n) is None]
    return f"encoders that work here: {', '.join(works)}" if works else "no encoder works with these options here"


# ---------------------------------------------------------------- side effects


def is_jetson(root: Path = Path("/")) -> bool:
    """Whether this machine is a Jetson board (L4T writes ``/etc/nv_tegra_release``)."""
    if (root / "etc/nv_tegra_release").exists():
        return True
    try:
        return "jetson" in (root / "proc/device-tree/model").read_text(errors="replace").lower()
    except OSError:
        return False


def probe_encoder(name: str, options: dict[str, str], width: int = PROBE_SIZE[0],
                  height: int = PROBE_SIZE[1]) -> str | None:
    """Open encoder ``name`` with ``options`` on a tiny context; None if it opens, else why not.

    Nothing is encoded or written. An encoder FFmpeg was built with can still fail here:
    NVENC without an NVIDIA driver or GPU, or on a GPU without an encoder block (H100).
    """
    import av
    import av.error

    try:
        ctx = av.CodecContext.create(name, "w")
    except (av.codec.codec.UnknownCodecError, ValueError):
        return "is not in this FFmpeg build"
    if ctx.type != "video":
        return "is not a video encoder"
    ctx.width, ctx.height, ctx.pix_fmt = int(width), int(height), "yuv420p"
    ctx.time_base, ctx.framerate = Fraction(1, 30), Fraction(30)
    ctx.options = dict(options)
    try:
        ctx.open()
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        text = " ".join((getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).split())
        hint = " (NVENC needs an NVIDIA GPU with a video encoder, and its driver)" if "nvenc" in name else ""
        return f"did not open: {text}{hint}"
    finally:
        del ctx
    return None


def resolve_encoder(requested: str, crf: int = 18, preset: str = "veryfast", threads: int = 0,
                    tune: str | None = None) -> EncoderChoice:
    """:func:`choose_encoder` on this machine: candidates for its platform, real probes.

    Raises:
        InputError: See :func:`choose_encoder`; also a preset or tune the named encoder lacks.
    """
    def probe(name: str) -> str | None:
        try:
            options = encoder_options(name, crf=crf, preset=preset, threads=threads, tune=tune)
        except InputError as exc:
            if name == requested:
                raise
            return f"cannot take these options ({exc})"
        return probe_encoder(name, options)

    jetson = is_jetson() if requested == "auto" else False
    return choose_encoder(requested, auto_candidates(jetson, crf), probe)

