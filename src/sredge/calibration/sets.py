"""Calibration sets: low-resolution crops at the deployment tile size, built once and reused.

A calibration set is what the quantizer feeds a network to learn its activation ranges, so it
must look like the network's *input*: low-resolution frames. Crops are taken from

* image folders: every image (sorted by name), ``crops_per_image`` crops each at seeded random
  positions; ``downscale`` first shrinks each image with the MATLAB bicubic kernel, for folders
  of high-resolution photos (T91 is one) that should look like LR frames, as the benchmark LR
  images are made;
* videos: ``frames`` frames spaced evenly over the whole clip (not the first seconds), one crop
  each; frames are taken as they are, since a clip is what the model will be run on.

Crops are kept as (N, 3, tile, tile) float32 RGB in [0, 1] and stored as 8-bit in a ``.npz``
with their provenance, so a set built on a workstation can be carried to a Jetson that has no
copy of the images. :func:`model_inputs` turns a set into one network's input (its colour space,
value range and pre-upsampling) with the same helper the runtime uses.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from sredge.atomic import check_writable, write_bytes_atomic
from sredge.errors import InputError
from sredge.imaging.io import IMAGE_SUFFIXES, VIDEO_SUFFIXES, image_size, read_rgb, to_float
from sredge.imaging.model_io import image_to_input
from sredge.imaging.resize import imresize
from sredge.limits import DEFAULT_MAX_PIXELS
from sredge.models.descriptor import ModelDescriptor
from sredge.runtime.tiling import MIN_SIDE

log = logging.getLogger(__name__)

FORMAT = "sredge-calibration"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CalibrationOptions:
    """How to cut a calibration set from its sources."""

    tile: int = 128
    """Side of the square LR crops, in LR pixels: the tile the model will be deployed with."""
    frames: int = 64
    """Frames sampled per video, spaced evenly over the whole clip; one crop per frame."""
    crops_per_image: int | None = None
    """Crops taken from each image of a folder, at seeded random positions; None: as many as reach
    ``min_crops`` together with the videos' crops (at least 1; :func:`resolve_crops_per_image`)."""
    downscale: int = 1
    """Shrink still images by this factor (MATLAB bicubic) before cropping, so that
    high-resolution photos look like LR frames; 1 takes them as they are. Videos are never shrunk."""
    min_crops: int = 16
    """Fewer crops than this from all sources together is an error: ranges from a handful
    of crops do not hold on real footage."""
    seed: int = 0
    """Seed of the crop positions: the same sources, options and seed give the same set."""

    def __post_init__(self) -> None:
        for name in ("tile", "frames", "crops_per_image", "downscale", "min_crops"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise InputError(f"calibration {name} must be at least 1, not {getattr(self, name)}")
        if self.tile < MIN_SIDE:  # sr-run pads every input to this; some networks (ESA blocks) need 15
            raise InputError(f"calibration tile {self.tile} is too small: sr-run never feeds a network less than "
                             f"{MIN_SIDE}x{MIN_SIDE} pixels, so calibrate on tiles of at least {MIN_SIDE}")
        if self.seed < 0:
            raise InputError(f"calibration seed must be 0 or more, not {self.seed}")


@dataclass(frozen=True)
class CalibrationSet:
    """LR crops and where they came from.

    Attributes:
        crops: (N, 3, tile, tile) float32 RGB in [0, 1] (multiples of 1/255: stored as 8-bit).
        sources: The folders / videos they were cut from, as given.
        counts: Crops contributed by each source, in the order of ``sources``.
        options: The options that cut them.
    """

    crops: np.ndarray
    sources: tuple[str, ...]
    counts: tuple[int, ...]
    options: CalibrationOptions

    def __len__(self) -> int:
        return int(self.crops.shape[0])

    def describe(self) -> str:
        """One line: how many crops of what size from which sources."""
        parts = ", ".join(f"{n} from {Path(s).name or s}" for s, n in zip(self.sources, self.counts))
        crops = "crop" if len(self) == 1 else "crops"
        return f"{len(self)} {crops} of {self.options.tile}x{self.options.tile} ({parts}), seed {self.options.seed}"


# -- planning (pure) -----------------------------------------------------------------------


def frame_indices(frame_count: int, n: int) -> list[int]:
    """``n`` frame indices spread evenly over a clip of ``frame_count`` frames (pure).

    Each index is the middle of one of ``n`` equal segments of the clip, so the first and last
    seconds weigh no more than the rest; with fewer frames than ``n`` every frame is taken once.
    """
    if frame_count <= 0 or n <= 0:
        return []
    if n >= frame_count:
        return list(range(frame_count))
    return sorted({min(frame_count - 1, int((i + 0.5) * frame_count / n)) for i in range(n)})


def crop_positions(height: int, width: int, tile: int, count: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """``count`` top-left corners (y, x) of ``tile`` x ``tile`` crops inside an image; [] when it is too small."""
    if height < tile or width < tile:
        return []
    ys = rng.integers(0, height - tile + 1, count)
    xs = rng.integers(0, width - tile + 1, count)
    return [(int(y), int(x)) for y, x in zip(ys, xs)]


# -- building ------------------------------------------------------------------------------


def _to_u8(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8/uint16/float RGB -> uint8 (what an 8-bit frame would hold)."""
    if rgb.dtype == np.uint8:
        return rgb
    f = to_float(rgb) if rgb.dtype.kind in "ui" else rgb
    return np.clip(np.round(f * 255.0), 0, 255).astype(np.uint8)


def _image_files(folder: Path) -> list[Path]:
    """The images of a calibration folder, sorted by name.

    Raises:
        InputError: The folder holds none.
    """
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"calibration folder {folder} has no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _image_crops(folder: Path, options: CalibrationOptions, rng: np.random.Generator,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> list[np.ndarray]:
    files = _image_files(folder)
    videos = sum(1 for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if videos:  # said once, when the images are cut (the header pass runs twice in sr-export)
        log.warning("%s: %s in the folder not read (a folder gives its images): give each video as a "
                    "source of its own", folder, "1 video is" if videos == 1 else f"{videos} videos are")
    crops, small = [], 0
    for path in files:
        img = read_rgb(path, max_pixels)
        if options.downscale > 1:
            img = imresize(_to_u8(img), scale=1 / options.downscale)
        img = _to_u8(img)
        where = crop_positions(img.shape[0], img.shape[1], options.tile, options.crops_per_image, rng)
        small += not where
        crops += [img[y:y + options.tile, x:x + options.tile] for y, x in where]
    if small:
        log.info("%s: %d of %d images are smaller than the %d-pixel tile and were skipped",
                 folder, small, len(files), options.tile)
    return crops


def _video_crops(path: Path, options: CalibrationOptions, rng: np.random.Generator,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> list[np.ndarray]:
    from sredge.runtime.video_io import Frame, VideoReader

    def frames():
        with VideoReader(str(path), max_pixels=max_pixels, warn_damage=False) as reader:
            for item in reader:
                if isinstance(item, Frame):
                    yield item
            if reader.error:  # like a damaged image in a folder: calibrating on part of it would go unnoticed
                raise InputError(f"calibration video {path} is damaged or cut short ({reader.error}); use an "
                                 "undamaged video, or cut it before the damage")

    with VideoReader(str(path), max_pixels=max_pixels) as reader:
        count = reader.info.frame_count
    if not count:  # the container does not say: count them (one extra decoding pass)
        count = sum(1 for _ in frames())
    wanted = set(frame_indices(count, options.frames))
    crops = []
    for frame in frames():
        if frame.index in wanted:
            h, w = frame.rgb.shape[:2]
            crops += [frame.rgb[y:y + options.tile, x:x + options.tile]
                      for y, x in crop_positions(h, w, options.tile, 1, rng)]
    return crops


def _kind(path: Path) -> str:
    """``"folder"`` or ``"video"``.

    Raises:
        InputError: Missing, or a file that is not a video (an image or a ``.npz`` among several sources).
    """
    if path.is_dir():
        return "folder"
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return "video"
    if path.is_file() and path.suffix.lower() == ".npz":
        raise InputError(f"calibration source {path} is a saved set, which is used alone: give it as the only "
                         "source, or build one set from all the folders and videos")
    if path.is_file():
        raise InputError(f"calibration source {path} is neither a folder of images nor a video "
                         f"({', '.join(VIDEO_SUFFIXES)})")
    raise InputError(f"no such calibration source: {path}")


def _require_enough(sources: Sequence[str | Path], counts: Sequence[int], options: CalibrationOptions) -> None:
    if sum(counts) < options.min_crops:
        per = ", ".join(f"{Path(s).name}: {n}" for s, n in zip(sources, counts))
        raise InputError(
            f"the calibration sources give only {sum(counts)} crops of {options.tile}x{options.tile} ({per}); "
            f"at least {options.min_crops} are needed: add images or videos, take more frames or crops per image "
            f"(sr-calibrate build --frames N / --crops-per-image N makes a set to pass as a .npz), "
            f"or use a smaller tile (images smaller than the tile are skipped); a lower minimum (sr-calibrate "
            f"--min-crops, sr-export --calib-crops) accepts fewer, at the risk of ranges that do not hold"
        )


def _planned_video_crops(path: Path, options: CalibrationOptions, max_pixels: int) -> int:
    from sredge.runtime.video_io import VideoReader

    with VideoReader(str(path), max_pixels=max_pixels) as reader:  # opens the container, decodes no frame
        info = reader.info
    if info.width < options.tile or info.height < options.tile:
        return 0
    return len(frame_indices(info.frame_count, options.frames)) if info.frame_count else options.frames


def check_calibration_sources(sources: Sequence[str | Path], options: CalibrationOptions = CalibrationOptions(),
                              max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, ...]:
    """What :func:`calibration_set_from` would refuse, found from file listings and headers alone.

    Nothing is decoded: image sizes come from their headers, a video's from its container (a clip
    that does not declare its length is counted as giving ``options.frames`` crops). A file damaged
    past its header is found only when :func:`build_calibration_set` decodes it. A lone ``.npz`` is
    loaded (:func:`load_calibration_set`).

    Args:
        sources: As for :func:`calibration_set_from`.
        options: Tile, frames per video, crops per image, downscale, minimum crops.
        max_pixels: Largest image or video frame (``--max-pixels``).

    Returns:
        The crops each source will give, in the order of ``sources``.

    Raises:
        InputError: A source is missing or not a folder/video, a folder has no images, an image has
            no readable header or is over ``max_pixels``, or all together give fewer than
            ``options.min_crops`` crops.
    """
    if len(sources) == 1 and Path(sources[0]).suffix.lower() == ".npz":
        return (len(load_calibration_set(sources[0])),)
    if not sources:
        raise InputError("no calibration source: give image folders or videos (--from)")
    return _plan(sources, options, max_pixels)[1]


def _plan(sources: Sequence[str | Path], options: CalibrationOptions,
          max_pixels: int) -> tuple[CalibrationOptions, tuple[int, ...]]:
    """``options`` with ``crops_per_image`` resolved and the crops each source gives, from one pass over the
    headers; too few crops, or too many for memory, refused (see :func:`check_calibration_sources`)."""
    planned = _planned(sources, options, max_pixels)
    options = _resolved(options, planned)
    counts = tuple(n * (options.crops_per_image if kind == "folder" else 1) for kind, n in planned)
    _require_enough(sources, counts, options)
    _require_memory(sum(counts), options)
    return options, counts


def _require_distinct(sources: Sequence[str | Path]) -> None:
    """Refuse a source given twice (under any spelling): its crops would weigh double."""
    seen: dict[Path, str] = {}
    for src in sources:
        key = Path(src).resolve()
        if key in seen:
            raise InputError(f"calibration source {src} is given twice (also as {seen[key]}): give each folder "
                             "or video once (--crops-per-image or --frames takes more from it)")
        seen[key] = str(src)


def _planned(sources: Sequence[str | Path], options: CalibrationOptions, max_pixels: int) -> list[tuple[str, int]]:
    """Per source: ``("folder", images at least a tile big)`` or ``("video", crops)``, from headers alone."""
    _require_distinct(sources)
    planned = []
    for src in sources:
        path = Path(src)
        if _kind(path) == "video":
            planned.append(("video", _planned_video_crops(path, options, max_pixels)))
            continue
        n = 0
        for file in _image_files(path):
            h, w = image_size(file, max_pixels)
            d = options.downscale  # as imresize sizes its output: ceil(side / d)
            n += min(-(-h // d), -(-w // d)) >= options.tile
        planned.append(("folder", n))
    return planned


def resolve_crops_per_image(sources: Sequence[str | Path], options: CalibrationOptions,
                            max_pixels: int = DEFAULT_MAX_PIXELS) -> CalibrationOptions:
    """``options`` with ``crops_per_image`` set: as given, or (None) the fewest per image that reach ``min_crops``
    together with the videos' crops, at least 1 (e.g. 6 for the 3 bundled sample photos, 1 for T91's 91).

    Raises:
        InputError: As :func:`check_calibration_sources` for a missing or unreadable source.
    """
    if options.crops_per_image is not None:
        return options
    return _resolved(options, _planned(sources, options, max_pixels))


def _resolved(options: CalibrationOptions, planned: list[tuple[str, int]]) -> CalibrationOptions:
    """:func:`resolve_crops_per_image` from the sources' plan (:func:`_planned`)."""
    if options.crops_per_image is not None:
        return options
    images = sum(n for kind, n in planned if kind == "folder")
    need = options.min_crops - sum(n for kind, n in planned if kind == "video")
    return replace(options, crops_per_image=max(1, -(-need // images)) if images and need > 0 else 1)


_BYTES_PER_CROP_PIXEL = 3 * (1 + 4 + 4)
"""Memory per crop pixel while a set is built: the 8-bit crop, then the float32 set and its stacking copy."""


def _require_memory(n: int, options: CalibrationOptions) -> None:
    """Refuse a set that cannot fit this machine's memory, before any crop is cut."""
    from sredge.runtime.memory import require_memory

    t = options.tile
    require_memory(n * t * t * _BYTES_PER_CROP_PIXEL, f"{n} crops of {t}x{t} need",
                   "take fewer frames or crops per image, or use a smaller tile")


def build_calibration_set(sources: Sequence[str | Path], options: CalibrationOptions = CalibrationOptions(),
                          max_pixels: int = DEFAULT_MAX_PIXELS) -> CalibrationSet:
    """Cut a calibration set from image folders and videos (see the module docstring).

    Args:
        sources: Folders of images and/or video files, used in the order given.
        options: Tile size, frames per video, crops per image, seed, ...
        max_pixels: Largest image or video frame decoded (``--max-pixels``), checked from the headers.

    Raises:
        InputError: A source is missing or unreadable, or all sources together give fewer than
            ``options.min_crops`` crops (the message says how many each gave and what to change).
    """
    if not sources:
        raise InputError("no calibration source: give image folders or videos (--from)")
    options, expected = _plan(sources, options, max_pixels)  # headers: too few, or too many
    planned = sum(expected)
    rng = np.random.default_rng(options.seed)
    crops: list[np.ndarray] = []
    counts = []
    try:
        for src in sources:
            path = Path(src)
            got = (_image_crops(path, options, rng, max_pixels) if _kind(path) == "folder"
                   else _video_crops(path, options, rng, max_pixels))
            crops += got
            counts.append(len(got))
        _require_enough(sources, counts, options)
        stacked = np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    except MemoryError:
        raise InputError(f"out of memory cutting {planned} crops of "
                         f"{options.tile}x{options.tile}: take fewer frames or crops per image, or use a smaller "
                         "tile") from None
    return CalibrationSet(np.ascontiguousarray(stacked), tuple(str(s) for s in sources), tuple(counts), options)


# -- files ---------------------------------------------------------------------------------


def save_calibration_set(cset: CalibrationSet, path: str | Path) -> Path:
    """Write a set to ``path`` (``.npz``, atomically): 8-bit crops and a JSON provenance record.

    Raises:
        InputError: The location is not writable.
    """
    path = check_writable(path)
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "sources": list(cset.sources),
            "counts": list(cset.counts), "options": asdict(cset.options)}
    u8 = np.clip(np.round(cset.crops * 255.0), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, crops=u8, meta=np.array(json.dumps(meta)))
    return write_bytes_atomic(path, buf.getvalue())


def load_calibration_set(path: str | Path) -> CalibrationSet:
    """Read a set written by :func:`save_calibration_set`.

    Raises:
        InputError: Missing file, not an ``.npz``, or not a sredge calibration set.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such calibration set: {path}")
    not_a_set = f"{path} is not a sredge calibration set (.npz from sr-calibrate build)"
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:  # our handle: closed on any error
            crops, meta = z["crops"], json.loads(str(z["meta"]))
    # A damaged archive fails in the zip reader, the decompressor or the array header, each its own way.
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise InputError(f"{not_a_set}: it is damaged or of another kind") from exc
    except MemoryError:  # a damaged or hostile array header declaring more than memory holds
        raise InputError(f"{not_a_set}: its crops would not fit in memory (a damaged header?)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(not_a_set)
    if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1] != 3 or crops.shape[0] < 1:
        raise InputError(f"{not_a_set}: its crops are {crops.dtype} {crops.shape}, not (N, 3, H, W) uint8")
    version = meta.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise InputError(f"{not_a_set}: its record is damaged (format version {version!r} is not a number)")
    if version > FORMAT_VERSION:
        raise InputError(f"{path} was written by a newer sredge (format {version}); upgrade sredge")
    known = set(CalibrationOptions.__dataclass_fields__)
    stored = meta.get("options", {})
    try:
        if not isinstance(stored, dict) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                   for k, v in stored.items() if k in known):
            raise TypeError("options must be integers")
        options = CalibrationOptions(**{k: v for k, v in stored.items() if k in known})
        sources, counts = tuple(str(s) for s in meta.get("sources", ())), tuple(int(c) for c in meta.get("counts", ()))
    except (TypeError, ValueError, OverflowError, InputError) as exc:
        raise InputError(f"{not_a_set}: its record is damaged ({exc})") from None
    n, _, h, w = crops.shape
    if (h, w) != (options.tile, options.tile):
        raise InputError(f"{not_a_set}: its crops are {w}x{h} but its record says {options.tile}x{options.tile}")
    if any(c < 0 for c in counts):
        raise InputError(f"{not_a_set}: its record is damaged (a negative crop count: {list(counts)})")
    if len(counts) != len(sources) or sum(counts) != n:
        raise InputError(f"{not_a_set}: its record counts {sum(counts)} crops from {len(sources)} sources in "
                         f"{len(counts)} entries, but it holds {n}")
    return CalibrationSet(crops.astype(np.float32) / 255.0, sources, counts, options)


def calibration_set_from(sources: Sequence[str | Path], options: CalibrationOptions = CalibrationOptions(),
                         max_pixels: int = DEFAULT_MAX_PIXELS) -> CalibrationSet:
    """A single ``.npz`` is loaded as it is; anything else is built with :func:`build_calibration_set`
    (images and video frames decoded under ``max_pixels``)."""
    if len(sources) == 1 and Path(sources[0]).suffix.lower() == ".npz":
        return load_calibration_set(sources[0])
    return build_calibration_set(sources, options, max_pixels)


def model_inputs(cset: CalibrationSet, desc: ModelDescriptor, limit: int | None = None) -> np.ndarray:
    """The crops as one network's input.

    Args:
        cset: The calibration set.
        desc: The network's descriptor (colour space, value range, pre-upsampling, size multiple).
        limit: Use at most this many crops, spread evenly over the set (so every source contributes).

    Returns:
        (N, C, T', T') float32 in [0, desc.value_range], as :func:`~sredge.imaging.model_io.image_to_input`
        prepares it: C = 1 (Y) for luma networks; T' = tile * scale for pre-upsampling networks. Crops
        are first cut down to a multiple of ``desc.size_multiple``.
    """
    m = max(desc.size_multiple, 1)
    t = cset.options.tile // m * m
    if t < 1:
        raise InputError(f"the calibration tile {cset.options.tile} is smaller than the model's size multiple {m}")
    crops = cset.crops
    if limit and limit < len(crops):
        crops = crops[np.unique(np.linspace(0, len(crops) - 1, limit).round().astype(int))]
    return np.concatenate([image_to_input(np.ascontiguousarray(c[:, :t, :t].transpose(1, 2, 0)), desc) for c in crops])

