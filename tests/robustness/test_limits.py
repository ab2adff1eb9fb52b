"""Limits before allocation (issue 14): pixel limits from headers, the metadata schema, the memory estimate.

Every command case runs in a child process under a 4 GiB address-space limit (``_hostile.AS_LIMIT``):
a run that tried to allocate what the input declares would die there (MemoryError, a signal) instead of
ending with exit 2 and one line. The pure pieces (header parsers against files OpenCV wrote, the memory
estimate, the schema) are tested directly.
"""

from __future__ import annotations

import fractions
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from sredge.errors import InputError
from sredge.imaging.headers import NeedMoreData, damage, png_raw_size, read_header
from sredge.limits import DEFAULT_MAX_PIXELS, check_pixels, parse_pixel_count
from sredge.models.descriptor import ModelDescriptor, metadata_problem
from sredge.runtime.memory import HEADROOM, TILE_CHOICES, check_fits, estimate, fitting_tile
from sredge.runtime.tiling import TileConfig, plan_tiles, tile_shape
from tests.robustness._hostile import (
    AS_LIMIT,
    big_zero_png,
    check_case,
    encode,
    huge_header,
    make_model,
    photo,
    png_file,
    rgb_desc,
    sr_limited,
)
from tests.robustness.conftest import BUNDLED_X2

# ----------------------------------------------------------------------------- header parsers (pure)

LAYOUTS = {"grey": (1, np.uint8), "rgb": (3, np.uint8), "rgba": (4, np.uint8), "rgb16": (3, np.uint16)}
CAN_HOLD = {  # what each encoding stores as given (OpenCV converts the rest, still a valid file)
    "png": LAYOUTS, "tif": LAYOUTS, "tif-raw": LAYOUTS, "bmp": ("grey", "rgb", "rgba"),
    "jpg": ("grey", "rgb"), "jpg-progressive": ("grey", "rgb"),
    "webp": ("rgb", "rgba"), "webp-lossless": ("rgb", "rgba"),
}
HEADER_CASES = [(k, lay) for k, lays in CAN_HOLD.items() for lay in lays]


@pytest.mark.parametrize("kind,layout", HEADER_CASES, ids=[f"{k}-{lay}" for k, lay in HEADER_CASES])
def test_header_matches_what_opencv_decodes(kind, layout):
    channels, dtype = LAYOUTS[layout]
    img = photo(37, 53, channels, dtype)
    data = encode(img, kind)
    head = read_header(data)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert (head.height, head.width) == decoded.shape[:2] == (37, 53)
    assert head.format == kind.split("-")[0].replace("jpg", "jpeg").replace("tif", "tiff")
    assert damage(data, head) is None


CUT_KINDS = ["png", "jpg", "jpg-progressive", "webp", "webp-lossless", "bmp", "tif", "tif-raw"]


@pytest.mark.parametrize("kind", CUT_KINDS)
def test_every_cut_point_is_detected(kind):
    """A file cut anywhere is either refused from its header or found damaged: no cut passes."""
    data = encode(photo(23, 31), kind)
    head = read_header(data)
    for cut in range(len(data)):
        part = data[:cut]
        try:
            read_header(part)
        except NeedMoreData:
            continue  # the header itself is cut: refused before any size is known
        except ValueError:
            assert cut < 16  # too short to even name its format
            continue
        assert damage(part, head) is not None, f"{kind} cut at {cut} of {len(data)} bytes passed"


def test_interlaced_png_raw_size_matches_libpng():
    """An Adam7 PNG built by hand (OpenCV cannot write one): the inflated size the check expects is the
    one libpng decodes, and one byte less is refused."""
    w, h = 13, 7
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    raw = b""
    for x0, y0, dx, dy in passes:
        pw, ph = max(0, -(-(w - x0) // dx)), max(0, -(-(h - y0) // dy))
        if pw and ph:
            raw += (b"\0" + bytes(range(pw))) * ph
    assert len(raw) == png_raw_size(w, h, 8, 0, 1)
    data = png_file(w, h, raw, interlace=1)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.shape == (h, w)
    assert damage(data, read_header(data)) is None
    short = png_file(w, h, raw[:-1], interlace=1)
    assert "incomplete" in damage(short, read_header(short))


@pytest.mark.parametrize("depth,color,expected", [(8, 2, 7 * (1 + 39)), (16, 6, 7 * (1 + 104)), (1, 0, 7 * (1 + 2)),
                                                  (4, 3, 7 * (1 + 7))])
def test_png_raw_size_non_interlaced(depth, color, expected):
    assert png_raw_size(13, 7, depth, color, 0) == expected


@pytest.mark.parametrize("text,n", [("250M", 250_000_000), ("250000000", 250_000_000), ("1.5G", 1_500_000_000),
                                    ("800k", 800_000), ("100_000_000", 100_000_000)])
def test_parse_pixel_count(text, n):
    assert parse_pixel_count(text) == n


@pytest.mark.parametrize("text", ["", "abc", "-5", "0", "12T", "1e9"])
def test_parse_pixel_count_refuses(text):
    with pytest.raises(InputError, match="--max-pixels"):
        parse_pixel_count(text)


def test_check_pixels_names_size_limit_and_flag():
    check_pixels("a.png", 10000, 10000, DEFAULT_MAX_PIXELS)  # exactly the limit passes
    with pytest.raises(InputError) as exc:
        check_pixels("a.png", 20000, 20000, DEFAULT_MAX_PIXELS)
    assert str(exc.value) == ("a.png is 20000x20000 pixels (400 MP), over the limit of 100 MP: "
                              "pass --max-pixels 400M if you mean it")


# ----------------------------------------------------------------------------- memory estimate (pure)

Y_X2 = ModelDescriptor("fsrcnn", 2, 1, 1, "y", 1.0, False)
RGB_X4 = ModelDescriptor("edsr", 4, 3, 3, "rgb", 255.0, False, size_multiple=8)
PRE_X3 = ModelDescriptor("vdsr", 3, 1, 1, "y", 1.0, True)
DESCS = {"y_x2": Y_X2, "rgb_x4_mult8": RGB_X4, "pre_x3": PRE_X3}
CONFIGS = {"whole": TileConfig(), "t64": TileConfig(tile=64), "t100_o8_b4": TileConfig(tile=100, overlap=8, batch=4),
           "t128_mult8": TileConfig(tile=128, multiple=8), "fixed": TileConfig(fixed_hw=(48, 40)),
           "blend": TileConfig(tile=96, blend=True)}


@pytest.mark.parametrize("cfg", list(CONFIGS.values()), ids=list(CONFIGS))
def test_tile_shape_is_plan_tiles_shape(cfg):
    """The estimate's tile shape is exactly the one plan_tiles runs, for every size up to 300 x 300 (step 7)."""
    for h in range(1, 300, 7):
        for w in range(1, 300, 11):
            plan = plan_tiles(h, w, cfg)
            assert tile_shape(h, w, cfg) == (plan.tile_h, plan.tile_w), (h, w)


@pytest.mark.parametrize("desc", list(DESCS.values()), ids=list(DESCS))
@pytest.mark.parametrize("cfg", list(CONFIGS.values()), ids=list(CONFIGS))
def test_estimate_grows_with_every_dimension(desc, cfg):
    base = estimate(300, 400, desc, cfg)
    assert min(base.frame, base.output, base.tile) > 0
    assert estimate(600, 400, desc, cfg).total > base.total
    assert estimate(300, 800, desc, cfg).total > base.total
    assert estimate(300, 400, desc, cfg, channels=4, itemsize=2).total > base.total
    bigger = ModelDescriptor(**{**desc.__dict__, "scale": desc.scale * 2})
    assert estimate(300, 400, bigger, cfg).output > base.output
    # the output dominates: at least the float32 network output of the whole image
    assert base.output >= desc.out_channels * 300 * desc.scale * 400 * desc.scale * 4


def test_estimate_whole_image_tile_is_the_activation_model():
    """Untiled, one call sees the whole network input: auto_tile's activation model times its pixels."""
    est = estimate(1000, 2000, Y_X2, TileConfig())
    per_px = 4 * (4 * 64 + 1 * 2 * 2)
    assert est.tile == 1000 * 2000 * (per_px + 4)
    pre = estimate(100, 200, PRE_X3, TileConfig())
    assert pre.tile == 300 * 600 * (4 * (4 * 64 + 1) + 4)  # pre-upsampled: the network sees 3x the pixels, s = 1


@pytest.mark.parametrize("desc", list(DESCS.values()), ids=list(DESCS))
@pytest.mark.parametrize("available_gib", [0.5, 1, 2, 4, 16])
def test_fitting_tile_is_the_largest_that_fits(desc, available_gib):
    available = int(available_gib * (1 << 30))
    h, w = 3000, 4000
    t = fitting_tile(h, w, desc, TileConfig(), available)
    fits = [c for c in TILE_CHOICES if estimate(h, w, desc, TileConfig(tile=c), ).total + HEADROOM <= available]
    assert t == (fits[0] if fits else None)
    if t is not None:
        check_fits(h, w, desc, TileConfig(tile=t), available=available)  # the advice passes its own check


def test_check_fits_names_the_tile_that_fits():
    cfg = TileConfig()
    need = estimate(3000, 4000, Y_X2, cfg).total
    with pytest.raises(InputError) as exc:
        check_fits(3000, 4000, Y_X2, cfg, available=need // 3)
    msg = str(exc.value)
    t = fitting_tile(3000, 4000, Y_X2, cfg, need // 3)
    assert t is not None and msg.endswith(f"use --tile {t}") and "upscaling 4000x3000 x2 to 8000x6000" in msg
    check_fits(3000, 4000, Y_X2, cfg, available=need + HEADROOM)  # exactly enough passes
    with pytest.raises(InputError, match="--batch 1"):
        check_fits(3000, 4000, Y_X2, TileConfig(tile=512, batch=64), available=need // 3)


def test_check_fits_says_when_no_tile_helps():
    with pytest.raises(InputError, match="with any --tile .* use a smaller image or a lower scale"):
        check_fits(20000, 20000, RGB_X4, TileConfig(), available=4 << 30)
    with pytest.raises(InputError, match="fixed 100000x100000 input alone needs"):
        check_fits(64, 64, Y_X2, TileConfig(fixed_hw=(100000, 100000)), available=4 << 30)


def test_available_bytes_sees_the_address_space_limit():
    code = ("from sredge.runtime.memory import available_bytes, _address_space_left; "
            "print(available_bytes(), _address_space_left())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         preexec_fn=lambda: __import__("resource").setrlimit(
                             __import__("resource").RLIMIT_AS, (AS_LIMIT, AS_LIMIT))).stdout.split()
    avail, left = int(out[0]), int(out[1])
    assert avail == left and 0 < left < AS_LIMIT


# ----------------------------------------------------------------------------- the metadata schema (pure)

GOOD = rgb_desc().to_metadata()


@pytest.mark.parametrize("values", [{"scale": 16}, {"scale": 1}, {"size_multiple": 64}, {"value_range": 255},
                                    {"num_params": 0}, {"psnr_drop_db": -0.01}, {"precision": "int8-trt"}])
def test_schema_accepts_the_edges(values):
    props = {**GOOD, **{f"sredge.{k}": json.dumps(v) for k, v in values.items()}}
    assert ModelDescriptor.from_metadata(props) is not None


def test_schema_problem_is_none_for_every_valid_descriptor():
    for d in (Y_X2, RGB_X4, PRE_X3, rgb_desc(precision="fp16", psnr_drop_db=0.02, quality_ref="Set5")):
        assert metadata_problem(d.__dict__) is None
        assert ModelDescriptor.from_metadata(d.to_metadata()) == d


@pytest.mark.parametrize("value", ['1000', '"2"', 'true'])
def test_engine_sidecar_is_validated_like_onnx_metadata(tmp_path, value):
    from sredge.runtime.backends.trt import read_engine_sidecar

    engine = tmp_path / "m.engine"
    (tmp_path / "m.engine.json").write_text(json.dumps({**GOOD, "sredge.scale": value}))
    with pytest.raises(InputError, match=r"m\.engine\.json: sredge\.scale = .* is invalid"):
        read_engine_sidecar(engine)


# ----------------------------------------------------------------------------- commands under 4 GiB


@pytest.fixture
def w(tmp_path):
    """A user's folder: the bundled x2 model, a small real photo, and a one-image dataset ``data/``."""
    shutil.copy(BUNDLED_X2, tmp_path / "m.onnx")
    cv2.imwrite(str(tmp_path / "in.png"), photo(40, 56))
    (tmp_path / "data").mkdir()
    shutil.copy(tmp_path / "in.png", tmp_path / "data" / "a.png")
    return tmp_path


HUGE = {"png": (20000, 20000), "jpg": (60000, 60000), "webp": (16000, 16000), "webp-vp8": (16000, 16000),
        "bmp": (30000, 30000), "tif": (20000, 20000)}


def _huge_file(folder: Path, kind: str) -> Path:
    suffix = {"webp-vp8": ".webp", "jpg": ".jpg"}.get(kind, "." + kind)
    path = folder / f"big{suffix}"
    path.write_bytes(huge_header(kind, *HUGE[kind]))
    return path


@pytest.mark.parametrize("kind", list(HUGE))
def test_sr_run_refuses_a_huge_header_before_decoding(w, kind):
    big = _huge_file(w, kind)
    width, height = HUGE[kind]
    check_case("run", ["--image", big, "--model", w / "m.onnx", "-o", w / "out.png", "-q"],
               inputs=[big, w / "m.onnx"], outputs=[w / "out.png"],
               match=(f"is {width}x{height} pixels", "--max-pixels"))


@pytest.mark.parametrize("kind", ["png", "jpg", "tif"])
def test_sr_bench_refuses_a_huge_dataset_image(w, kind):
    data = w / "data"
    shutil.move(_huge_file(w, kind), data / f"z_big.{'tif' if kind == 'tif' else kind}")
    check_case("bench", [w / "m.onnx", "--dataset", data, "--json", w / "r.json", "--size", "0", "-q"],
               inputs=[data, w / "m.onnx"], outputs=[w / "r.json"], match=("over the limit", "--max-pixels"))


@pytest.mark.parametrize("kind", ["png", "webp"])
def test_sr_calibrate_refuses_a_huge_image(w, kind):
    src = w / "frames"
    src.mkdir()
    shutil.move(_huge_file(w, kind), src / f"big.{kind}")
    check_case("calibrate", ["build", "--from", src, "-o", w / "set.npz", "--min-crops", "1"],
               inputs=[src], outputs=[w / "set.npz"], match=("over the limit", "--max-pixels"))


def test_sr_train_refuses_a_huge_image(w):
    pytest.importorskip("torch")
    data = w / "hr"
    data.mkdir()
    shutil.move(_huge_file(w, "png"), data / "big.png")
    check_case("train", ["--data", data, "--steps", "1", "-o", w / "ck.pth", "-q"],
               inputs=[data], outputs=[w / "ck.pth"], match=("20000x20000", "--max-pixels"))


def _mjpeg(path: Path, frames: list[bytes], width: int, height: int) -> Path:
    """An MJPEG .mkv of the given JPEG frames; the stream header says ``width`` x ``height``."""
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("mjpeg", rate=1)
        s.width, s.height, s.pix_fmt = width, height, "yuvj420p"
        s.time_base = fractions.Fraction(1, 1)
        for i, data in enumerate(frames):
            p = av.Packet(data)
            p.stream, p.pts, p.dts, p.time_base = s, i, i, s.time_base
            out.mux(p)
    return path


def test_sr_run_refuses_a_huge_video_frame_from_the_stream_header(w):
    video = _mjpeg(w / "big.mkv", [huge_header("jpg", 12000, 12000)] * 2, 12000, 12000)
    check_case("run", ["--video", video, "--model", w / "m.onnx", "-o", w / "out.mp4", "-q"],
               inputs=[video, w / "m.onnx"], outputs=[w / "out.mp4"],
               match=("big.mkv is 12000x12000 pixels (144 MP), over the limit of 100 MP", "--max-pixels 144M"))


def test_sr_calibrate_refuses_a_huge_video_frame(w):
    video = _mjpeg(w / "big.mkv", [huge_header("jpg", 12000, 12000)] * 2, 12000, 12000)
    check_case("calibrate", ["build", "--from", video, "-o", w / "set.npz", "--min-crops", "1"],
               inputs=[video], outputs=[w / "set.npz"], match=("12000x12000", "--max-pixels"))


def test_raised_limit_then_the_memory_estimate_refuses(w):
    """The issue's 20000x20000 PNG as a complete file: over the default limit; with --max-pixels raised it
    is decoded (400 MB) and the x2 run is refused from the estimate, before its 40 GB are touched."""
    big = big_zero_png(w / "black.png", 20000, 20000)
    args = ["--image", big, "--model", w / "m.onnx", "-o", w / "out.png", "-q"]
    check_case("run", args, inputs=[big], outputs=[w / "out.png"], match="over the limit of 100 MP")
    check_case("run", args + ["--max-pixels", "500M"], inputs=[big], outputs=[w / "out.png"],
               match=("upscaling 20000x20000 x2 to 40000x40000 needs about", "use a smaller image or a lower scale"))


def test_whole_frame_run_is_refused_with_the_tile_that_fits_and_that_tile_runs(w):
    """--tile 0 on a 2000x2000 photo needs ~4.3 GB of activations: refused under 4 GiB, naming a tile;
    the run with that tile then finishes under the same limit. (A cheap x2 graph: the estimate plans for
    the zoo's convolutional networks whatever the graph, so the bundled model would only add minutes.)"""
    img = cv2.resize(photo(100, 100), (2000, 2000), interpolation=cv2.INTER_LINEAR)
    src = w / "big.png"
    cv2.imwrite(str(src), img)
    model = make_model(w / "x2.onnx", desc=rgb_desc())
    out = w / "out.png"
    res = check_case("run", ["--image", src, "--model", model, "-o", out, "--tile", "0", "-q"],
                     inputs=[src], outputs=[out], match=("needs about", "use --tile "))
    tile = res.err.strip().rsplit("--tile ", 1)[1]
    assert int(tile) in TILE_CHOICES
    check_case("run", ["--image", src, "--model", model, "-o", out, "--tile", tile, "-q"], inputs=[src], code=0)
    assert cv2.imread(str(out)).shape == (4000, 4000, 3)


def test_video_whole_frame_run_is_refused_before_any_frame(w):
    frame = encode(cv2.resize(photo(100, 100), (2000, 2000)), "jpg")
    video = _mjpeg(w / "v.mkv", [frame] * 2, 2000, 2000)
    check_case("run", ["--video", video, "--model", w / "m.onnx", "-o", w / "out.mp4", "--tile", "0", "-q"],
               inputs=[video], outputs=[w / "out.mp4"], match=("needs about", "use --tile "))


def test_pre_upsampling_x16_is_refused_from_the_estimate(w):
    """A valid x16 pre-upsampling model on a 1000x1000 image: a 16000x16000 bicubic input is never made."""
    model = make_model(w / "pre.onnx", shape=("n", 1, "h", "w"), scale=1,
                       desc=ModelDescriptor("vdsr", 16, 1, 1, "y", 1.0, True))
    src = w / "big.png"
    cv2.imwrite(str(src), cv2.resize(photo(50, 50), (1000, 1000)))
    check_case("run", ["--image", src, "--model", model, "-o", w / "out.png", "-q"], inputs=[src, model],
               outputs=[w / "out.png"], match=("to 16000x16000 needs about", "smaller image or a lower scale"))


# --- malformed sredge metadata: every key, garbage values: exit 2 naming the key and the value

BAD_METADATA = [
    ("scale", "1000"), ("scale", "0"), ("scale", "-2"), ("scale", "2.5"), ("scale", "true"), ("scale", '"2"'),
    ("scale", "null"), ("scale", "{"), ("scale", "1e400"), ("in_channels", "4"), ("in_channels", "0"),
    ("out_channels", "1"), ("color_space", '"lab"'), ("color_space", "3"), ("color_space", '"y"'),
    ("value_range", "0"), ("value_range", "NaN"), ("value_range", "-1"), ("value_range", "65535"),
    ("pre_upsample", '"yes"'), ("pre_upsample", "1"), ("size_multiple", "0"), ("size_multiple", "65"),
    ("size_multiple", "1e9"), ("fp16_safe", '"true"'), ("num_params", "-5"), ("num_params", "1.5"),
    ("precision", '"int4"'), ("psnr_drop_db", "Infinity"), ("arch", '""'), ("arch", "7"), ("variant", "[1]"),
    ("quality_ref", "{}"),
]


@pytest.mark.parametrize("key,value", BAD_METADATA, ids=[f"{k}={v}" for k, v in BAD_METADATA])
def test_sr_run_refuses_malformed_metadata(w, key, value):
    model = make_model(w / "bad.onnx", desc=rgb_desc(), props={f"sredge.{key}": value})
    check_case("run", ["--image", w / "in.png", "--model", model, "-o", w / "out.png", "-q"],
               inputs=[w / "in.png", model], outputs=[w / "out.png"], match=f"sredge.{key}")


def test_sr_run_refuses_incomplete_metadata(w):
    model = make_model(w / "bad.onnx", desc=rgb_desc(), props={"sredge.scale": None})
    check_case("run", ["--image", w / "in.png", "--model", model, "-o", w / "out.png", "-q"],
               inputs=[w / "in.png", model], outputs=[w / "out.png"], match="sredge.scale missing")


def test_scale_1000_pre_upsampling_model_is_refused_not_resized(w):
    """The issue's case: sredge.scale 1000 on a pre-upsampling model tried a 23 GiB bicubic resize."""
    model = make_model(w / "pre.onnx", shape=("n", 1, "h", "w"), scale=1,
                       desc=ModelDescriptor("vdsr", 1000, 1, 1, "y", 1.0, True))
    for cmd, args, out in (("run", ["--image", w / "in.png", "--model", model, "-o", w / "out.png", "-q"],
                            w / "out.png"),
                           ("bench", [model, "--dataset", w / "data", "--json", w / "r.json", "--size", "0", "-q"],
                            w / "r.json")):
        check_case(cmd, args, inputs=[w / "in.png", model], outputs=[out], match="sredge.scale = 1000 is invalid")


# --- models no SR runtime can feed: exit 2 with one line, never exit 3 or the OOM killer

BAD_MODELS = {
    "uint8-input": (dict(in_type="uint8"), "tensor(uint8)"),
    "int64-input": (dict(in_type="int64"), "tensor(int64)"),
    "double-input": (dict(in_type="double", out_type="float"), "tensor(double)"),
    "int64-output": (dict(out_type="int64"), "tensor(int64)"),
    "zero-height": (dict(shape=(1, 3, 0, 16)), "empty axis"),
    "zero-channels": (dict(shape=("n", 0, "h", "w")), "empty axis"),
    "huge-fixed-input": (dict(shape=(1, 3, 100000, 100000)), "fixed input 1x3x100000x100000"),
    "huge-fixed-batch": (dict(shape=(100000, 3, 512, 512)), "fixed input 100000x3x512x512"),
    "classifier-fixed-batch-256": (dict(shape=(256, 1, 28, 28), body="classifier"), "expected (N, C, H, W)"),
    "huge-fixed-with-metadata": (dict(shape=(1, 3, 65536, 65536), desc=rgb_desc()), "fixed 65536x65536 input alone"),
}


@pytest.mark.parametrize("name", list(BAD_MODELS))
def test_sr_run_refuses_models_it_cannot_feed(w, name):
    kw, match = BAD_MODELS[name]
    model = make_model(w / f"{name}.onnx", **kw)
    check_case("run", ["--image", w / "in.png", "--model", model, "-o", w / "out.png", "-q"],
               inputs=[w / "in.png", model], outputs=[w / "out.png"], match=match)


@pytest.mark.parametrize("name", ["uint8-input", "huge-fixed-input", "classifier-fixed-batch-256"])
def test_sr_bench_refuses_models_it_cannot_feed(w, name):
    kw, match = BAD_MODELS[name]
    model = make_model(w / f"{name}.onnx", **kw)
    check_case("bench", [model, "--dataset", w / "data", "--json", w / "r.json", "--scale", "2", "-q"],
               inputs=[w / "data", model], outputs=[w / "r.json"], match=match)


def test_fixed_batch_model_runs_with_its_batch_padded(w):
    """A model whose batch axis is fixed at 4 (as the issue's 256x1x28x28 was) runs one tile per call: the
    call is padded to 4 and the result is the model's (nearest x2), in sr-run and sr-bench."""
    model = make_model(w / "b4.onnx", shape=(4, 3, "h", "w"), desc=rgb_desc())
    out = w / "out.png"
    check_case("run", ["--image", w / "in.png", "--model", model, "-o", out, "--tile", "40", "-q"],
               inputs=[w / "in.png", model], code=0)
    src = cv2.imread(str(w / "in.png"))
    assert np.array_equal(cv2.imread(str(out)), src.repeat(2, axis=0).repeat(2, axis=1))
    check_case("bench", [model, "--dataset", w / "data", "--json", w / "r.json", "--size", "64x64", "--repeats", "1",
                         "--warmup", "0", "-q"], inputs=[w / "data", model], code=0)


def test_ort_fixed_batch_axis_is_padded_and_split(tmp_path):
    """Any batch runs on a model whose batch axis is fixed at 4: fewer are padded, more are split."""
    from sredge.runtime.backends.ort import OrtBackend

    model = make_model(tmp_path / "b4.onnx", shape=(4, 3, "h", "w"))
    x = np.random.default_rng(0).random((9, 3, 5, 7), dtype=np.float32)
    with OrtBackend(model) as be:
        spec = be.input_spec()
        assert (spec.max_batch, spec.batch_fixed) == (4, True)
        for n in (1, 3, 4, 5, 9):
            assert np.array_equal(be.run(x[:n]), x[:n].repeat(2, axis=2).repeat(2, axis=3)), n
    with OrtBackend(make_model(tmp_path / "dyn.onnx")) as be:
        assert (be.input_spec().max_batch, be.input_spec().batch_fixed) == (None, False)


def test_cli_max_pixels_value_is_validated(w):
    res = sr_limited("run", "--image", w / "in.png", "--max-pixels", "lots")
    assert res.code == 2 and res.err.count("\n") == 1 and "--max-pixels 'lots'" in res.err
    # and a raised limit admits what the default refuses (the 20000x20000 header is then found cut short)
    big = w / "big.png"
    big.write_bytes(huge_header("png", 20000, 20000))
    check_case("run", ["--image", big, "--model", w / "m.onnx", "-o", w / "o.png", "--max-pixels", "400M", "-q"],
               inputs=[big], outputs=[w / "o.png"], match="truncated or corrupt")
