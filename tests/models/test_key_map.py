"""``--key-map``: user rename rules applied to a checkpoint's keys before detection."""

from __future__ import annotations

import json

import pytest
import torch

from sredge.errors import InputError
from sredge.models.archs.espcn import ESPCN
from sredge.models.key_map import apply_key_map, parse_key_map


def _renamed_espcn(tmp_path):
    """An ESPCN whose keys no detector knows: ``module.Conv1``/``Conv2``/``Conv3`` for conv_1..conv_3."""
    torch.manual_seed(3)
    sd = ESPCN(2, n1=16, n2=8).state_dict()
    path = tmp_path / "espcn_renamed_x2.pth"
    torch.save({f"module.Conv{k[5]}{k[6:]}": v for k, v in sd.items()}, path)
    return path, sd


MAP = {"^module\\.": "", "^Conv(\\d)\\.": "conv_\\1."}


def test_rules_apply_in_order_and_keep_values():
    km = parse_key_map(json.dumps(MAP))
    t = torch.ones(2)
    out = apply_key_map({"module.Conv1.weight": t, "module.other": t}, km)
    assert list(out) == ["conv_1.weight", "other"] and out["conv_1.weight"] is t


def test_key_map_from_a_file(tmp_path):
    f = tmp_path / "map.json"
    f.write_text(json.dumps(MAP))
    assert [p.pattern for p, _ in parse_key_map(str(f)).rules] == list(MAP)


def test_two_keys_renamed_to_one_are_refused():
    with pytest.raises(InputError, match="renames both 'a.weight' and 'b.weight' to 'c.weight'"):
        apply_key_map({"a.weight": 1, "b.weight": 2}, parse_key_map('{"^[ab]\\\\.": "c."}'))


@pytest.mark.parametrize(
    "text,match",
    [
        ('{"(": "x"}', "not a valid regular expression"),
        ('{"^a": "\\\\2"}', "invalid group reference"),
        ('{"(?P<n>a)": "\\\\g<m>"}', "unknown group name"),
        ('{"a": "\\\\q"}', "bad escape"),
        ('{"a": 1}', "JSON object of"),
        ("{}", "non-empty JSON object"),
        ('["a", "b"]', "JSON object of"),
        ("{nope", "not valid JSON"),
        ("no-such-map.json", "no such file"),
    ],
)
def test_bad_key_maps_are_one_line(text, match):
    with pytest.raises(InputError, match=match) as exc:
        parse_key_map(text)
    assert "\n" not in str(exc.value)


def test_renamed_checkpoint_refused_without_key_map_exported_with_it(cli, tmp_path):
    ckpt, _ = _renamed_espcn(tmp_path)
    res = cli("export", ckpt, "-o", tmp_path / "a.onnx", "-q")
    assert res.code == 2 and "unknown architecture" in res.err and "--key-map" in res.err
    assert len(res.err.strip().splitlines()) == 1 and not (tmp_path / "a.onnx").exists()

    res = cli("export", ckpt, "-o", tmp_path / "a.onnx", "--key-map", json.dumps(MAP))
    assert res.code == 0, res.err
    assert "espcn" in res.out and "scale x2 (from weights)" in res.out and "parity" in res.out
    assert (tmp_path / "a.onnx").exists()


def test_exported_weights_are_the_original_tensors(cli, tmp_path):
    import onnx
    from onnx import numpy_helper

    ckpt, sd = _renamed_espcn(tmp_path)
    f = tmp_path / "map.json"
    f.write_text(json.dumps(MAP))
    assert cli("export", ckpt, "-o", tmp_path / "b.onnx", "-q", "--key-map", f, "--no-simplify").code == 0
    init = {tuple(t.dims): numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / "b.onnx")).graph.initializer}
    for name in ("conv_1.weight", "conv_3.weight"):
        assert (init[tuple(sd[name].shape)] == sd[name].numpy()).all()


@pytest.mark.parametrize("bad", ['{"(": "x"}', '{"^a": "\\\\3"}'])
def test_bad_regex_is_exit_2_one_line_before_loading(cli, tmp_path, bad):
    ckpt, _ = _renamed_espcn(tmp_path)
    res = cli("export", ckpt, "-o", tmp_path / "c.onnx", "--key-map", bad)
    assert res.code == 2 and "--key-map rule" in res.err
    assert len(res.err.strip().splitlines()) == 1 and not (tmp_path / "c.onnx").exists()


def test_a_key_that_still_does_not_fit_gets_the_usual_message(cli, tmp_path):
    ckpt, _ = _renamed_espcn(tmp_path)
    res = cli("export", ckpt, "-o", tmp_path / "d.onnx", "--key-map", '{"^module\\\\.": ""}')
    assert res.code == 2 and "unknown architecture (keys Conv1.weight" in res.err


def test_sr_run_torch_backend_takes_the_same_key_map(cli, tmp_path):
    import cv2
    import numpy as np

    ckpt, _ = _renamed_espcn(tmp_path)
    img = tmp_path / "in.png"
    cv2.imwrite(str(img), (np.random.default_rng(0).random((20, 24, 3)) * 255).astype(np.uint8))
    refused = cli("run", "--image", img, "--model", ckpt, "-o", tmp_path / "a.png")
    assert refused.code == 2 and "--key-map" in refused.err
    res = cli("run", "--image", img, "--model", ckpt, "--key-map", json.dumps(MAP), "-o", tmp_path / "b.png")
    assert res.code == 0, res.err
    assert cv2.imread(str(tmp_path / "b.png")).shape == (40, 48, 3)
    bad = cli("run", "--image", img, "--model", ckpt, "--key-map", '{"(": "x"}', "-o", tmp_path / "c.png")
    assert bad.code == 2 and len(bad.err.strip().splitlines()) == 1
