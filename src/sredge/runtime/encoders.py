"""Which FFmpeg encoder writes ``sr-run``'s video, and the options each one takes.

``--codec`` picks the bitstream (``h264``, ``hevc``, ``av1``, ``ffv1``) and ``--encoder`` the
implementation (``auto``: hardware when it opens, else software); a pair that disagrees is refused
(:func:`requested_encoder`). Pure decisions: the encoders ``--encoder auto`` tries, in order, per
platform and codec (:func:`auto_candidates`); ``--crf``/``--preset``/threads/latency tuning mapped to
each encoder's own options, with per-codec defaults (:func:`encoder_options`); the choice given a
probe (:func:`choose_encoder`); whether a container holds a codec (:func:`container_problem`).
Side effects live in two small functions: :func:`probe_encoder`
opens a tiny encoder context to see whether an encoder works here (``h264_nvenc`` is compiled
into PyAV's FFmpeg but opens only with an NVIDIA GPU that has NVENC, and its driver), and
:func:`is_jetson` looks at the machine.

Why hardware first only off Jetson: PyAV's FFmpeg reaches NVENC through the desktop driver's
``libnvidia-encode``, which Jetson boards do not have (their encoder is reached through
GStreamer's ``nvv4l2h264enc``), and the Orin Nano has no hardware encoder at all; so on Jetson
``auto`` is software x264 without probing anything else.
"""

from __future__ import annotations

import os
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
        Encoder("libsvtav1", "svtav1", "av1", False),
        Encoder("av1_nvenc", "nvenc", "av1", True),
        Encoder("ffv1", "ffv1", "ffv1", False),
    )
}
"""Encoders ``--encoder`` accepts by name."""
ENCODER_CHOICES = ("auto", *ENCODERS)
"""Values of ``sr-run --encoder``."""
CODECS = ("h264", "hevc", "av1", "ffv1")
"""Values of ``sr-run --codec``: the bitstreams sredge writes (FFV1 is lossless, for archiving)."""
DEFAULT_CODEC = "h264"
"""The codec when neither ``--codec`` nor a named ``--encoder`` says: H.264 plays everywhere."""

# Software encoder of each codec: the last ``auto`` candidate, which PyAV's FFmpeg always has.
_SOFTWARE = {"h264": "libx264", "hevc": "libx265", "av1": "libsvtav1", "ffv1": "ffv1"}
_HARDWARE = {"h264": "h264_nvenc", "hevc": "hevc_nvenc", "av1": "av1_nvenc"}
DEFAULT_CRF = {"x264": 18, "x265": 18, "nvenc": 18, "svtav1": 25}
"""``--crf`` when not given, per encoder family: about visually transparent for upscaled video
(SVT-AV1's 0..63 scale needs a higher number for the same quality)."""
CRF_RANGE = {"x264": (0, 51), "x265": (0, 51), "nvenc": (1, 51), "svtav1": (1, 63)}
"""The ``--crf`` each encoder family accepts (NVENC and SVT-AV1 have no lossless mode)."""
SVTAV1_PRESETS = tuple(str(n) for n in range(14))
"""SVT-AV1 presets, ``"0"`` (slowest, best) .. ``"13"`` (fastest)."""
# x264 preset -> the SVT-AV1 preset of about the same place on the speed/quality scale.
_X264_TO_SVTAV1 = {
    "ultrafast": "12", "superfast": "11", "veryfast": "10", "faster": "9", "fast": "8",
    "medium": "6", "slow": "5", "slower": "4", "veryslow": "3", "placebo": "2",
}  # fmt: skip

_TEN_BIT = {"libx264": "yuv420p10le", "libx265": "yuv420p10le", "libsvtav1": "yuv420p10le", "ffv1": "yuv420p10le",
            "h264_nvenc": "p010le", "hevc_nvenc": "p010le", "av1_nvenc": "p010le"}


def encoder_pix_fmt(name: str, bit_depth: int) -> str:
    """The 4:2:0 pixel format ``name`` is fed at ``bit_depth`` (pure): ``yuv420p`` for 8 bits; for 10 bits
    planar ``yuv420p10le`` (x264 High 10, x265 Main 10, SVT-AV1, FFV1) or NVENC's ``p010le``.

    Raises:
        InputError: An encoder sredge does not know at 10 bits, or another depth.
    """
    if bit_depth == 8:
        return "yuv420p"
    if bit_depth == 10 and name in _TEN_BIT:
        return _TEN_BIT[name]
    raise InputError(f"{name} cannot write {bit_depth}-bit video here: use --codec hevc (x265 Main 10) or h264 "
                     "(x264 High 10)")


PROBE_SIZE = (1280, 720)
"""(width, height) a probe opens the encoder at: any size every encoder accepts."""


def auto_candidates(jetson: bool, crf: int | None, codec: str = DEFAULT_CODEC) -> tuple[str, ...]:
    """Encoders ``--encoder auto`` tries for ``codec``, in order; the last always works with PyAV's FFmpeg.

    Args:
        jetson: The machine is a Jetson board (see :func:`is_jetson`).
        crf: The quality asked for (None: the default); 0 (lossless) is software's own, so hardware
            is not tried.
        codec: One of :data:`CODECS`.
    """
    software = _SOFTWARE[codec]
    hardware = _HARDWARE.get(codec)
    if jetson or crf == 0 or hardware is None:
        return (software,)
    return (hardware, software)


def requested_encoder(codec: str | None, encoder: str) -> tuple[str, str]:
    """``(codec, encoder)`` from ``--codec`` and ``--encoder`` (pure): the codec picks the family, the
    encoder the implementation.

    Args:
        codec: ``--codec`` (one of :data:`CODECS`), or None when not given.
        encoder: ``--encoder``: ``"auto"`` or a key of :data:`ENCODERS`.

    Raises:
        InputError: An unknown codec or encoder, or an encoder of another codec than ``--codec``.
    """
    if codec is not None and codec not in CODECS:
        raise InputError(f"unknown codec {codec!r}: use one of {', '.join(CODECS)}")
    if encoder == "auto":
        return codec or DEFAULT_CODEC, "auto"
    if encoder not in ENCODERS:
        raise InputError(f"unknown encoder {encoder!r}: use one of {', '.join(ENCODER_CHOICES)}")
    writes = ENCODERS[encoder].codec
    if codec is not None and codec != writes:
        fits = [n for n, e in ENCODERS.items() if e.codec == codec]
        raise InputError(f"--encoder {encoder} writes {writes}, not --codec {codec}: drop one, or use --encoder "
                         f"{' or '.join(['auto', *fits])} with --codec {codec}")
    return writes, encoder


def container_problem(container: str, suffix: str, codec: str, holds: frozenset[str] | set[str]) -> str | None:
    """Why an output file of this format cannot take ``codec`` video, or None when it can (pure).

    Args:
        container: FFmpeg muxer name, e.g. ``"webm"``.
        suffix: The output path's suffix, e.g. ``".webm"``, for the message.
        codec: One of :data:`CODECS`.
        holds: The codecs the muxer can store (see :func:`sredge.runtime.streams.output_format`).
    """
    if codec in holds:
        return None
    where = f"{suffix} files" if suffix else f"the {container} format"
    other = [c for c in CODECS if c in holds]
    instead = f"--codec {' or '.join(other)}, or " if other else ""
    homes = "-o NAME.mkv" if codec == "ffv1" else "-o NAME.mp4 or NAME.mkv"
    return f"{where} cannot hold {codec} video: use {instead}{homes}"


def encoder_options(name: str, crf: int | None = None, preset: str | None = None, threads: int = 0,
                    tune: str | None = None) -> dict[str, str]:
    """The FFmpeg options that carry ``--crf``, ``--preset``, threads and tuning to ``name``.

    x264/x265 take them as they are. NVENC gets constant-quality VBR with ``cq`` = ``crf``
    (the same 0..51 quantizer scale, roughly the same quality) and the x264 preset mapped to
    ``p1``..``p7`` (or a ``p1``..``p7`` given directly); ``tune="zerolatency"`` becomes
    NVENC's ultra-low-latency tuning without B-frames. SVT-AV1 gets ``crf`` on its 1..63 scale and
    the x264 preset mapped to ``0``..``13`` (or a number given directly); ``zerolatency`` becomes its
    low-delay prediction structure. FFV1 is lossless: it takes no crf or preset. An encoder sredge
    does not know gets ``crf`` and ``preset`` as before.

    Args:
        name: FFmpeg encoder name.
        crf: Quality (lower is better) in the family's :data:`CRF_RANGE`; None: its :data:`DEFAULT_CRF`.
        preset: An x264 preset name (see :data:`X264_PRESETS`), for NVENC also ``p1``..``p7``, for
            SVT-AV1 also ``0``..``13``; None: ``veryfast`` or its equivalent.
        threads: Encoder threads, 0 for the encoder's choice (NVENC and SVT-AV1 use none).
        tune: ``"zerolatency"`` (no frame held back), another tune the encoder knows, or None.

    Raises:
        InputError: A crf out of range, a preset or tune the encoder does not have, lossless NVENC or
            SVT-AV1, or a crf or preset given to FFV1.
    """
    enc = ENCODERS.get(name)
    family = enc.family if enc else None
    if family == "ffv1":
        return _ffv1_options(crf, preset, threads)
    low, high = CRF_RANGE.get(family, (0, 51))
    if crf is None:
        crf = DEFAULT_CRF.get(family, 18)
    if not (0 if family in ("nvenc", "svtav1") else low) <= int(crf) <= high:
        raise InputError(f"crf must be between {low} and {high}, got {crf}")
    if crf == 0 and family in ("nvenc", "svtav1"):
        raise InputError(f"--crf 0 (lossless) is not available with {name}: use --encoder libx264, libx265 or "
                         "--codec ffv1")
    crf = int(crf)
    preset = "veryfast" if preset is None else preset
    if family == "svtav1":
        return _svtav1_options(name, crf, preset, tune)
    if family == "nvenc":
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


def _svtav1_options(name: str, crf: int, preset: str, tune: str | None) -> dict[str, str]:
    svt = _X264_TO_SVTAV1.get(preset, preset)
    if svt not in SVTAV1_PRESETS:
        raise InputError(f"unknown {name} preset {preset!r}: use one of {', '.join(X264_PRESETS)} or 0-13")
    options = {"crf": str(crf), "preset": svt}
    if tune == "zerolatency":
        options["svtav1-params"] = "pred-struct=1"  # low delay: no frame waits for a later one
    elif tune is not None:
        raise InputError(f"unknown {name} tune {tune!r}: use zerolatency (--latency-mode)")
    return options


def _ffv1_options(crf: int | None, preset: str | None, threads: int) -> dict[str, str]:
    if crf is not None or preset is not None:
        raise InputError("ffv1 is lossless: it takes no --crf or --preset; drop them")
    # Version 3: slices (threads) and per-slice CRCs, so damage is found and stays local.
    options = {"level": "3", "slicecrc": "1"}
    if threads:
        options["threads"] = str(threads)
    return options  # intra-only: no frame is ever held back, so zerolatency needs nothing


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
    The encoders that work are listed among those of the same codec as the candidates.

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
        codec = ENCODERS[requested].codec
        raise InputError(f"--encoder {requested} {why}; {_working(probe, exclude=requested, codec=codec)}")
    passed: list[tuple[str, str]] = []
    for name in candidates:
        why = probe(name)
        if why is None:
            return EncoderChoice(name, "auto", ENCODERS[name].hardware, tuple(passed))
        passed.append((name, why))
    tried = "; ".join(f"{n} {why}" for n, why in passed)
    codec = ENCODERS[candidates[0]].codec if candidates and candidates[0] in ENCODERS else None
    raise InputError(f"no video encoder opened ({tried}); {_working(probe, exclude=None, codec=codec)}")


def _working(probe: Probe, exclude: str | None, codec: str | None = None) -> str:
    works = [n for n, e in ENCODERS.items() if n != exclude and (codec is None or e.codec == codec)
             and probe(n) is None]
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


def quiet_encoder_logs(name: str) -> None:
    """Keep SVT-AV1 from printing its banner and settings to stderr (it reads ``SVT_LOG`` when an encoder
    opens; 1 = errors only). A value the user set is kept."""
    enc = ENCODERS.get(name)
    if enc is not None and enc.family == "svtav1":
        os.environ.setdefault("SVT_LOG", "1")


def probe_encoder(name: str, options: dict[str, str], width: int = PROBE_SIZE[0],
                  height: int = PROBE_SIZE[1], bit_depth: int = 8) -> str | None:
    """Open encoder ``name`` with ``options`` on a tiny context; None if it opens, else why not.

    Nothing is encoded or written. An encoder FFmpeg was built with can still fail here:
    NVENC without an NVIDIA driver or GPU, or on a GPU without an encoder block (H100), or
    without 10-bit support for this codec (``bit_depth=10``; most GPUs' H.264 encoder).
    """
    import av
    import av.error

    try:
        ctx = av.CodecContext.create(name, "w")
    except (av.codec.codec.UnknownCodecError, ValueError):
        return "is not in this FFmpeg build"
    if ctx.type != "video":
        return "is not a video encoder"
    try:
        pix_fmt = encoder_pix_fmt(name, bit_depth)
    except InputError:
        return f"cannot write {bit_depth}-bit video"
    quiet_encoder_logs(name)
    ctx.width, ctx.height, ctx.pix_fmt = int(width), int(height), pix_fmt
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


def resolve_encoder(requested: str, crf: int | None = None, preset: str | None = None, threads: int = 0,
                    tune: str | None = None, codec: str | None = None, bit_depth: int = 8) -> EncoderChoice:
    """:func:`choose_encoder` on this machine: candidates for its platform and codec, real probes.

    Args:
        requested: ``--encoder``: ``"auto"`` or a key of :data:`ENCODERS`.
        crf: ``--crf``, None for the encoder's default (see :func:`encoder_options`).
        preset: ``--preset``, None for the default.
        threads: Encoder threads, 0 for the encoder's choice.
        tune: Encoder tuning, e.g. ``"zerolatency"``.
        codec: ``--codec``, None when not given (see :func:`requested_encoder`).
        bit_depth: 8, or 10 for a 10-bit source: the encoder must open at that depth.

    Raises:
        InputError: See :func:`choose_encoder` and :func:`requested_encoder`; also a preset or tune
            the named encoder lacks.
    """
    codec, requested = requested_encoder(codec, requested)
    jetson = is_jetson() if requested == "auto" else False
    candidates = auto_candidates(jetson, crf, codec)

    def probe(name: str) -> str | None:
        try:
            options = encoder_options(name, crf=crf, preset=preset, threads=threads, tune=tune)
        except InputError as exc:
            if name == requested or (requested == "auto" and candidates == (name,)):
                raise  # the options can never work: say so plainly
            return f"cannot take these options ({exc})"
        return probe_encoder(name, options, bit_depth=bit_depth)

    return choose_encoder(requested, candidates, probe)


def check_container(path: str | Path, codec: str) -> None:
    """Refuse, before anything is decoded or written, an output whose container cannot hold ``codec``
    video (e.g. H.264 in ``.webm``).

    Raises:
        InputError: Naming the codecs the container takes and the containers that take ``codec``.
    """
    from sredge.runtime.streams import output_format

    fmt, holds = output_format(path)
    why = container_problem(fmt, Path(path).suffix, codec, holds)
    if why is not None:
        raise InputError(f"cannot write {path}: {why}")

