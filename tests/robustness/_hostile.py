"""Helpers for the limit and broken-result cases: commands run under an address-space limit, and real
hostile files (ONNX models built with onnx.helper, images with lying headers or cut short).

Everything here makes real files: real ONNX graphs that ONNX Runtime runs, real images OpenCV wrote,
then damaged the way a download or a hostile user damages them.
"""

from __future__ import annotations

import resource
import struct
import subprocess
import zlib
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sredge.models.descriptor import ModelDescriptor
from sredge.models.onnx_file import write_descriptor
from tests.robustness.conftest import PROGS, Result, assert_clean_error, child_env, command, hashes, leftovers

AS_LIMIT = 4 << 30
"""The address-space limit every case here runs under (``ulimit -v 4194304``): python, numpy, OpenCV, PyAV,
ONNX Runtime and torch start under it with room to spare (about 1.2 GiB mapped after importing all of them)."""


def _limit_address_space() -> None:  # runs in the child, between fork and exec
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def sr_limited(cmd: str, *args: object, timeout: float = 120) -> Result:
    """``sr-<cmd> args`` in a child process under :data:`AS_LIMIT` (a run that would exhaust memory fails
    there with MemoryError or a signal, where the kernel's OOM killer would end it elsewhere)."""
    proc = subprocess.run(command(cmd, *args), capture_output=True, text=True, timeout=timeout, env=child_env(),
                          preexec_fn=_limit_address_space)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def check_case(cmd: str, args: list, *, inputs: list[Path], outputs: list[Path] = (), code: int = 2,
               match: str | tuple[str, ...] | None = None, watch: Path | None = None, warned: str = "") -> Result:
    """Run one case under the address-space limit and check what the suite promises: the exit code (never a
    signal), one line on stderr naming ``match``, inputs byte-identical, no output unless exit 0, no temp file.

    ``warned``: the case also warns, in one line before the error, containing this text (e.g. an FP16 file on
    the CPU); no other line is allowed."""
    before = hashes(inputs)
    res = sr_limited(cmd, *args)
    assert res.code >= 0, f"killed by signal {-res.code}; stderr:\n{res.err}"
    matches = (match,) if isinstance(match, str) or match is None else match
    if code == 0:
        assert res.code == 0, res.err
    else:
        assert_clean_error(res, cmd, code, matches[0], lines=2 if warned else 1)
        if warned:
            first = res.err.splitlines()[0]
            assert first.startswith(f"{PROGS[cmd]}: WARNING: ") and warned in first, res.err
    for m in matches[1:]:
        assert m in res.err, f"{m!r} not in {res.err!r}"
    assert hashes(inputs) == before, "an input changed"
    if res.code != 0:
        for o in outputs:
            assert not Path(o).exists(), f"{o} exists after exit {res.code}"
    folder = watch or Path(inputs[0]).parent
    assert leftovers(folder) == [], leftovers(folder)
    return res


# -- ONNX models -------------------------------------------------------------------------------

_TYPES = {"float": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "uint8": TensorProto.UINT8,
          "int64": TensorProto.INT64, "double": TensorProto.DOUBLE}


def make_model(path: Path, *, shape=("batch", 3, "height", "width"), in_type: str = "float",
               out_type: str | None = None, scale: int = 2, body: str = "copy", desc: ModelDescriptor | None = None,
               props: dict[str, str | None] | None = None) -> Path:
    """A real ONNX SR model: ``body`` on the input, then a nearest-neighbour x``scale`` Resize.

    Args:
        shape: The input's (N, C, H, W); strings are dynamic axes.
        in_type, out_type: Element types of the input and output (the graph casts between them).
        body: ``copy``; ``nan`` (x * NaN); ``inf`` (x * inf + 1); ``sqrt`` (sqrt(0.9 - x): NaN where x > 0.9);
            ``overflow`` (x * 300 * 300 in float16: inf where x > 0.73, the FP16 overflow of a real model);
            ``classifier`` (global average pool and flatten: an (N, C) output, not an image).
        desc: sredge metadata, written with the project's :func:`write_descriptor`.
        props: Raw ``metadata_props`` written over it (a value None deletes the key): malformed metadata.
    """
    half = in_type == "float16"
    work = TensorProto.FLOAT16 if half else TensorProto.FLOAT
    dt = np.float16 if half else np.float32
    nodes, inits = [], []
    cur = "input"
    if in_type not in ("float", "float16"):
        nodes.append(helper.make_node("Cast", [cur], ["xf"], to=TensorProto.FLOAT))
        cur = "xf"

    def const(name, value):
        inits.append(numpy_helper.from_array(np.array(value, dt), name))
        return name

    def op(kind, *inputs, **attrs):
        nonlocal cur
        out = f"t{len(nodes)}"
        nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        cur = out
        return out

    if body == "nan":
        op("Mul", cur, const("k", np.nan))
    elif body == "inf":
        op("Add", op("Mul", cur, const("k", np.inf)), const("one", 1.0))
    elif body == "sqrt":
        op("Sqrt", op("Sub", const("t", 0.9), cur))
    elif body == "overflow":
        op("Mul", op("Mul", cur, const("a", 300.0)), const("b", 300.0))
    elif body == "classifier":
        op("Flatten", op("GlobalAveragePool", cur))
    if scale > 1 and body != "classifier":
        inits.append(numpy_helper.from_array(np.array([1, 1, scale, scale], np.float32), "scales"))
        op("Resize", cur, "", "scales", mode="nearest")
    out_t = _TYPES[out_type or ("float16" if half else "float")]
    if out_t != work or not nodes:
        op("Cast", cur, to=out_t)
    nodes[-1].output[0] = "output"
    graph = helper.make_graph(nodes, "hostile", [helper.make_tensor_value_info("input", _TYPES[in_type], list(shape))],
                              [helper.make_tensor_value_info("output", out_t, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    if desc is not None:
        write_descriptor(model, desc)
    if props:
        merged = {p.key: p.value for p in model.metadata_props}
        for k, v in props.items():
            if v is None:
                merged.pop(k, None)
            else:
                merged[k] = v
        helper.set_model_props(model, merged)
    onnx.save(model, str(path))
    return path


def rgb_desc(**kw) -> ModelDescriptor:
    """An RGB x2 descriptor (the models :func:`make_model` makes by default)."""
    base = dict(arch="hostile", scale=2, in_channels=3, out_channels=3, color_space="rgb", value_range=1.0,
                pre_upsample=False, variant="hostile_x2")
    return ModelDescriptor(**{**base, **kw})


# -- images ------------------------------------------------------------------------------------

def photo(h: int = 48, w: int = 64, channels: int = 3, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    """A smooth synthetic picture (gradients and a disc): compresses like a photo, unlike noise."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    planes = [(x / max(w - 1, 1)), (y / max(h - 1, 1)), ((x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(h, w) / 3) ** 2)]
    planes.append(np.full((h, w), 0.8, np.float32))
    rng = np.random.default_rng(seed)
    img = np.stack(planes[:max(channels, 1)], axis=2) * 0.9 + rng.random((h, w, max(channels, 1))) * 0.1
    peak = 65535 if dtype == np.uint16 else 255
    img = np.round(img * peak).astype(dtype)
    return img[..., 0] if channels == 1 else img


ENCODE = {
    "png": (".png", []),
    "jpg": (".jpg", []),
    "jpg-progressive": (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
    "webp": (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
    "webp-lossless": (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),
    "bmp": (".bmp", []),
    "tif": (".tif", []),
    "tif-raw": (".tif", [cv2.IMWRITE_TIFF_COMPRESSION, 1]),
}
"""Encodings as OpenCV writes them: name -> (suffix, imencode parameters)."""


def encode(img: np.ndarray, kind: str) -> bytes:
    suffix, params = ENCODE[kind]
    ok, buf = cv2.imencode(suffix, img, params)
    assert ok, kind
    return buf.tobytes()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))


def png_file(width: int, height: int, raw: bytes, depth: int = 8, color: int = 0, interlace: int = 0) -> bytes:
    """A PNG from its header fields and its raw (filtered) rows, built by hand."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw, 9))
            + png_chunk(b"IEND", b""))


def huge_header(kind: str, width: int, height: int) -> bytes:
    """A small real file of ``kind`` whose header declares ``width`` x ``height`` pixels (the rest of
    the file is a small picture's: a decoder trusting the header allocates for the declared size)."""
    if kind == "png":
        return png_file(width, height, b"\0" * 64)
    img = photo(16, 16)
    data = bytearray(encode(img, {"jpg": "jpg", "webp": "webp-lossless", "webp-vp8": "webp", "bmp": "bmp",
                                  "tif": "tif"}[kind]))
    if kind == "jpg":
        i = data.find(b"\xff\xc0")
        data[i + 5:i + 9] = struct.pack(">HH", height, width)
    elif kind == "webp":  # VP8L: 14-bit width - 1 and height - 1
        bits = struct.unpack("<I", data[21:25])[0] & ~((1 << 28) - 1)
        data[21:25] = struct.pack("<I", bits | (width - 1) | ((height - 1) << 14))
    elif kind == "webp-vp8":
        data[26:30] = struct.pack("<HH", width, height)
    elif kind == "bmp":
        data[18:26] = struct.pack("<ii", width, height)
    elif kind == "tif":
        ifd = struct.unpack("<I", data[4:8])[0]
        n = struct.unpack("<H", data[ifd:ifd + 2])[0]
        for i in range(n):
            e = ifd + 2 + 12 * i
            tag, typ = struct.unpack("<HH", data[e:e + 4])
            if tag in (256, 257):
                value = width if tag == 256 else height
                data[e + 8:e + 12] = struct.pack("<I", value) if typ == 4 else struct.pack("<HH", value, 0)
    return bytes(data)


def big_zero_png(path: Path, width: int, height: int) -> Path:
    """A complete, valid 1-bit PNG of ``width`` x ``height`` black pixels (decodes to width x height bytes),
    compressed row by row: a few tens of kB on disk for hundreds of megapixels."""
    row = b"\0" * (1 + (width + 7) // 8)
    z = zlib.compressobj(9)
    parts = [z.compress(row) for _ in range(height)] + [z.flush()]
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"".join(parts))
                     + png_chunk(b"IEND", b""))
    return path
