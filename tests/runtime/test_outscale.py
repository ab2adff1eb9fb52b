"""--outscale / --target / --ext / --quality: the pure size plan, the resize, and sr-run end to end."""

from __future__ import annotations

import math

import av
import cv2
import numpy as np
import pytest

from sredge.errors import InputError
from sredge.imaging.io import read_image, write_image
from sredge.runtime.resize_plan import OutputSize, ResizePlan, parse_target, plan_output_size, resize_i420, resize_image
from tests.conftest import asset

# -- the plan (pure) -------------------------------------------------------------------------------

@pytest.mark.parametrize("in_hw, scale, size, even, out_hw, how", [
    ((100, 60), 4, OutputSize(), False, (400, 240), "none"),
    ((100, 60), 4, OutputSize(outscale=3), False, (300, 180), "area"),       # a x4 model to reach x3
    ((100, 60), 4, OutputSize(outscale=4), False, (400, 240), "none"),       # the model's own scale
    ((100, 60), 2, OutputSize(outscale=3), False, (300, 180), "lanczos"),    # past the model
    ((101, 61), 2, OutputSize(outscale=1.5), False, (152, 92), "area"),      # rounds to the nearest pixel
    ((101, 61), 2, OutputSize(outscale=2.5), False, (252, 152), "lanczos"),  # 252.5 -> 252, 152.5 -> 152
    ((101, 61), 2, OutputSize(outscale=1.3), False, (131, 79), "area"),
    ((101, 61), 2, OutputSize(outscale=1.3), True, (132, 80), "area"),       # odd sides up to even
    ((101, 61), 3, OutputSize(), True, (303, 183), "none"),                  # nothing asked: odd kept (writer pads)
    ((1080, 1920), 2, OutputSize(target=(3840, 2160)), False, (2160, 3840), "none"),
    ((1080, 1920), 4, OutputSize(target=(3840, 2160)), False, (2160, 3840), "area"),
    ((480, 640), 2, OutputSize(target=(1920, 1080)), False, (1080, 1920), "lanczos"),  # exact: stretched
    ((480, 640), 4, OutputSize(target=(1920, 0)), False, (1440, 1920), "area"),        # 0: keeps the aspect
    ((480, 640), 4, OutputSize(target=(0, 1000)), True, (1000, 1334), "area"),         # 1333.3 -> even 1334
    ((480, 640), 2, OutputSize(target=(1000, 1500)), False, (1500, 1000), "lanczos"),  # one side shrinks
])
def test_plan_output_size(in_hw, scale, size, even, out_hw, how):
    plan = plan_output_size(in_hw, scale, size, even=even)
    assert plan == ResizePlan((in_hw[0] * scale, in_hw[1] * scale), out_hw, how)
    assert plan.resizes == (how != "none")
    if even and not size.is_model_scale:
        assert out_hw[0] % 2 == 0 and out_hw[1] % 2 == 0


@pytest.mark.parametrize("kwargs, words", [
    ({"outscale": 2, "target": (10, 10)}, "give one"),
    ({"outscale": 0}, "> 0"),
    ({"outscale": -1}, "> 0"),
    ({"outscale": math.nan}, "> 0"),
    ({"outscale": 40}, "<= 16"),
    ({"target": (0, 0)}, "positive"),
    ({"target": (-5, 10)}, "positive"),
])
def test_impossible_sizes_are_refused(kwargs, words):
    with pytest.raises(InputError, match=words):
        OutputSize(**kwargs)


def test_parse_target():
    assert parse_target("3840x2160") == (3840, 2160)
    assert parse_target(" 1920X0 ") == (1920, 0)
    for bad in ("3840", "axb", "1920x1080x2", "1.5x2"):
        with pytest.raises(InputError, match="WIDTHxHEIGHT"):
            parse_target(bad)


# -- resizing pixels -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["children-alpha.png", "wolf_gray.jpg", "tree_alpha_16bit.png"])
def test_resize_keeps_layout_and_sample_type(name):
    img = read_image(asset(f"realworld/{name}"))
    h, w = img.shape[:2]
    for out_hw in ((h // 3, w // 3), (h * 2 + 1, w + 7)):
        plan = plan_output_size((h, w), 1, OutputSize(target=(out_hw[1], out_hw[0])))
        out = resize_image(img, plan)
        assert out.shape == out_hw + img.shape[2:] and out.dtype == img.dtype


def test_shrinking_averages_instead_of_aliasing():
    """INTER_AREA: a one-pixel stripe pattern shrunk 4x becomes its mean grey, not stripes (nearest would alias)."""
    stripes = np.zeros((64, 64), np.uint8)
    stripes[:, ::2] = 255
    plan = plan_output_size((16, 16), 4, OutputSize(outscale=1))  # model output 64x64 -> 16x16
    assert plan.interpolation == "area"
    out = resize_image(stripes, plan)
    assert out.shape == (16, 16) and np.abs(out.astype(int) - 128).max() <= 1


def test_i420_planes_resize_like_the_rgb_frame():
    rgb = np.ascontiguousarray(read_image(asset("realworld/OST_009.png"))[:96, :128])
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    plan = plan_output_size((96, 128), 1, OutputSize(outscale=1.5), even=True)
    out = resize_i420(i420, plan)
    assert out.shape == (144 * 3 // 2, 192)
    via_rgb = resize_image(rgb, plan)
    back = cv2.cvtColor(out, cv2.COLOR_YUV2RGB_I420).astype(np.float32)
    assert np.abs(back - via_rgb).mean() < 3  # same picture; only the 4:2:0 round trip differs
    with pytest.raises(ValueError, match="even"):
        resize_i420(i420, plan_output_size((96, 128), 1, OutputSize(target=(191, 144))))


# -- sr-run ------------------------------------------------------------------------------------------

@pytest.fixture
def photo(tmp_path):
    """A real photo, cropped small (96x128) so the bundled x2 model runs in well under a second."""
    path = tmp_path / "photo.png"
    write_image(path, np.ascontiguousarray(read_image(asset("realworld/OST_009.png"))[100:196, 50:178]))
    return path


def test_outscale_and_target_set_the_image_size_and_name(cli, photo):
    res = cli("run", "--image", photo, "--scale", "2", "--outscale", "3", "-q")
    assert res.code == 0, res.err
    assert read_image(photo.with_name("photo_x3.png")).shape == (288, 384, 3)
    res = cli("run", "--image", photo, "--scale", "2", "--target", "200x0", "-q")
    assert res.code == 0, res.err
    assert read_image(photo.with_name("photo_200x0.png")).shape == (150, 200, 3)
    with pytest.raises(SystemExit) as exc:
        cli("run", "--image", photo, "--scale", "2", "--outscale", "3", "--target", "200x0")
    assert exc.value.code == 2


def test_outscale_of_the_model_scale_is_the_model_output(cli, photo, tmp_path):
    assert cli("run", "--image", photo, "--scale", "2", "-o", tmp_path / "a.png", "-q").code == 0
    assert cli("run", "--image", photo, "--scale", "2", "--outscale", "2", "-o", tmp_path / "b.png", "-q").code == 0
    assert np.array_equal(read_image(tmp_path / "a.png"), read_image(tmp_path / "b.png"))


def test_ext_and_quality(cli, photo, tmp_path):
    for q in ("30", "95"):
        res = cli("run", "--image", photo, "--scale", "2", "--ext", "jpg", "--quality", q, "-o", tmp_path / f"q{q}.jpg",
                  "-q")
        assert res.code == 0, res.err
    assert (tmp_path / "q30.jpg").stat().st_size < (tmp_path / "q95.jpg").stat().st_size
    png = tmp_path / "ref.png"
    assert cli("run", "--image", photo, "--scale", "2", "-o", png, "-q").code == 0
    ref = read_image(png).astype(np.float32)
    err30 = np.abs(read_image(tmp_path / "q30.jpg") - ref).mean()
    err95 = np.abs(read_image(tmp_path / "q95.jpg") - ref).mean()
    assert err95 < err30
    res = cli("run", "--image", photo, "--scale", "2", "--ext", "webp", "-q")
    assert res.code == 0, res.err
    assert read_image(photo.with_name("photo_x2.webp")).shape == (192, 256, 3)


@pytest.mark.parametrize("args, words", [
    (["-o", "{tmp}/x.png", "--ext", "jpg"], "--ext jpg"),
    (["--ext", "png", "--quality", "90"], "PNG is lossless"),
    (["-o", "{tmp}/x.png", "--quality", "90"], "--quality"),
    (["--quality", "0", "--ext", "jpg"], "1..100"),
    (["--quality", "90"], "--quality"),  # the default name keeps the input's .png
    (["--compare", "{tmp}/c.mp4"], ".png"),
])
def test_conflicting_image_options_one_line(cli, photo, tmp_path, args, words):
    res = cli("run", "--image", photo, "--scale", "2", *[a.format(tmp=tmp_path) for a in args])
    assert res.code == 2 and words in res.err and len(res.err.strip().splitlines()) == 1, res.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]  # nothing written


def test_ext_for_video_is_refused(cli, tmp_path):
    res = cli("run", "--video", asset("video/onepiece_demo.mp4"), "--scale", "2", "--ext", "jpg")
    assert res.code == 2 and "--ext and --quality set image outputs" in res.err


def test_transparency_into_jpeg_is_refused_before_inference_16bit_is_reduced(cli, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    alpha = read_image(asset("realworld/children-alpha.png"))
    write_image(src / "alpha.png", np.ascontiguousarray(alpha[:64, :64]))
    deep = read_image(asset("realworld/tree_alpha_16bit.png"))
    opaque = np.ascontiguousarray(deep[:64, :64]).copy()
    opaque[..., 3] = 65535  # an alpha that is opaque everywhere loses nothing in JPEG
    write_image(src / "deep.png", opaque)
    res = cli("run", "--image", src, "--scale", "2", "--ext", "jpg", "-o", tmp_path / "out")
    assert res.code == 2 and "alpha.png has transparent pixels" in res.err and "--ext png" in res.err
    out = read_image(tmp_path / "out" / "deep_x2.jpg")
    assert out.dtype == np.uint8 and out.shape == (128, 128, 3)
    assert not (tmp_path / "out" / "alpha_x2.jpg").exists()


def test_video_outscale_even_size_every_frame(cli, tmp_path):
    src = tmp_path / "clip.mp4"
    with av.open(str(src), "w") as c:  # 6 frames of a real photo, 66x50
        s = c.add_stream("libx264", rate=6)
        s.width, s.height, s.pix_fmt = 66, 50, "yuv420p"
        base = read_image(asset("realworld/OST_009.png"))
        for i in range(6):
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(base[i * 5:i * 5 + 50, :66]),
                                                         format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    res = cli("run", "--video", src, "--scale", "2", "--outscale", "2.5", "--compare", tmp_path / "c.png",
              "--report", tmp_path / "r.json", "-q")
    assert res.code == 0, res.err
    with av.open(str(tmp_path / "clip_x2.5.mp4")) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 6 and {(f.width, f.height) for f in frames} == {(166, 126)}  # 165 -> 166, 125 -> 126
    assert "note: the output is 166x126, not 165x125: 4:2:0 video needs even sides" in res.err
    even = cli("run", "--video", src, "--scale", "2", "--outscale", "3", "-q")
    assert even.code == 0 and "the output is" not in even.err  # 198x150: as asked
    pic = read_image(tmp_path / "c.png")
    assert pic.shape[1] == 2 * 166 + 4 and pic.shape[0] > 126
    import json

    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["output_size"] == [166, 126] and "frames in flight" in rep["latency_note"]


def test_two_inputs_on_one_output_name_are_refused(cli, photo, tmp_path):
    write_image(tmp_path / "photo.jpg", read_image(photo))
    res = cli("run", "--image", tmp_path, "--scale", "4", "--ext", "webp")
    assert res.code == 2 and "would be written to the same file" in res.err and "(--ext webp)" in res.err
    assert f"{tmp_path.name}_x4 " in res.err  # the image audit: checks before the model loads named _x1 folders
    assert not (tmp_path.parent / f"{tmp_path.name}_x4").exists()
