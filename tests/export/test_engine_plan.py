"""sr-build's pure planning: --batch parsing, ONNX facts, profiles, precision flags per
TensorRT generation (feature sets given as plain data), DLA, cache keys and the sidecar
facts; plus the engine-vs-machine check of the runtime.

TensorRT API availability is described as a set of attribute names, exactly what
``engine_build.trt_features`` reports; nothing here pretends to build an engine.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sredge.errors import InputError
from sredge.export.engine_plan import (
    DEFAULT_TILE,
    F_CALIBRATOR,
    F_DLA,
    F_FP16,
    F_GPU_FALLBACK,
    F_INT8,
    F_STRONGLY_TYPED,
    F_TF32,
    FEATURES,
    BatchRange,
    BuildOptions,
    DeviceInfo,
    OnnxFacts,
    Profile,
    cache_key,
    center_crop,
    default_timing_cache,
    fingerprint_files,
    is_up_to_date,
    onnx_facts,
    parse_batch,
    plan_build,
    plan_dla,
    plan_precision,
    plan_profile,
    sidecar_facts,
)
from sredge.models.descriptor import ModelDescriptor
from sredge.runtime.backends.trt import check_engine_matches, read_engine_sidecar_extra, write_engine_sidecar

# What each TensorRT generation exposes (by its documented Python API).
TRT10 = frozenset(FEATURES)  # strongly typed + FP16/INT8/TF32 flags + legacy calibrator + DLA
TRT11 = frozenset({F_STRONGLY_TYPED, F_TF32, F_GPU_FALLBACK, F_DLA})  # no per-precision flags, no calibrator
TRT11_NO_FLAG = frozenset({F_GPU_FALLBACK, F_DLA})  # if the deprecated STRONGLY_TYPED member is dropped later
TRT86 = frozenset({F_FP16, F_INT8, F_TF32, F_GPU_FALLBACK, F_CALIBRATOR, F_DLA})  # before strongly typed

DESC = ModelDescriptor(arch="espcn", scale=2, in_channels=3, out_channels=3, color_space="rgb",
                       value_range=1.0, pre_upsample=False, variant="espcn_x2")
SWIN = dataclasses.replace(DESC, arch="swinir", size_multiple=8)
DEV = DeviceInfo("Orin", "8.7")


def facts(precision="fp32", shape=(None, 3, None, None), desc=DESC, sha="ab" * 32) -> OnnxFacts:
    return OnnxFacts(sha256=sha, input_name="input", input_shape=shape,
                     input_dtype="float16" if precision == "fp16" else "float32",
                     has_qdq=precision == "int8", has_fp16=precision == "fp16", descriptor=desc)


# ---------------------------------------------------------------- --batch


@pytest.mark.parametrize("text,expected", [("1:4:8", (1, 4, 8)), ("8", (1, 8, 8)), ("1", (1, 1, 1)),
                                           (" 2:2:2 ", (2, 2, 2)), ("1:1:16", (1, 1, 16))])
def test_parse_batch(text, expected):
    assert parse_batch(text) == BatchRange(*expected)


@pytest.mark.parametrize("text,match", [("4:2:8", "min <= opt <= max"), ("0:1:2", "min <= opt"),
                                        ("0", "min <= opt"), ("1:8", "three numbers"), ("a:b:c", "whole numbers"),
                                        ("1:2:3:4", "three numbers"), ("", "whole numbers"), ("-1", "1 <= min")])
def test_parse_batch_refuses(text, match):
    with pytest.raises(InputError, match=match):
        parse_batch(text)


# ---------------------------------------------------------------- ONNX facts (real ONNX protos)


def _model(dtype=TensorProto.FLOAT, qdq=False, cast16=False, shape=("N", 3, "H", "W"), inputs=1, meta=True):
    w = numpy_helper.from_array(np.zeros((12, 3, 3, 3), np.float16 if dtype == TensorProto.FLOAT16 else np.float32),
                                "w")
    nodes, x = [], "x"
    inits = [w]
    if qdq:
        inits += [numpy_helper.from_array(np.array(0.02, np.float32), "s"),
                  numpy_helper.from_array(np.array(0, np.int8), "z")]
        nodes += [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
                  helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"])]
        x = "xd"
    if cast16:
        nodes.append(helper.make_node("Cast", [x], ["xh"], to=TensorProto.FLOAT16))
        nodes.append(helper.make_node("Cast", ["xh"], ["xf"], to=TensorProto.FLOAT))
        x = "xf"
    nodes += [helper.make_node("Conv", [x, "w"], ["c"], pads=[1, 1, 1, 1]),
              helper.make_node("DepthToSpace", ["c"], ["y"], blocksize=2)]
    ins = [helper.make_tensor_value_info("x", dtype, list(shape))]
    if inputs == 2:
        ins.append(helper.make_tensor_value_info("x2", dtype, list(shape)))
    graph = helper.make_graph(nodes, "g", ins, [helper.make_tensor_value_info("y", dtype, ["N", 3, "H2", "W2"])],
                              inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if meta:
        helper.set_model_props(m, DESC.to_metadata())
    return m


def test_onnx_facts_float32():
    f = onnx_facts(_model(), "00" * 32)
    assert (f.input_name, f.input_shape, f.input_dtype) == ("x", (None, 3, None, None), "float32")
    assert (f.has_qdq, f.has_fp16, f.precision, f.descriptor) == (False, False, "fp32", DESC)


def test_onnx_facts_fp16_qdq_and_casts():
    assert onnx_facts(_model(TensorProto.FLOAT16), "").precision == "fp16"
    assert onnx_facts(_model(TensorProto.FLOAT16), "").input_dtype == "float16"
    assert onnx_facts(_model(qdq=True), "").precision == "int8"
    assert onnx_facts(_model(cast16=True), "").precision == "fp16"  # float32 I/O, float16 inside
    assert onnx_facts(_model(meta=False), "").descriptor is None
    assert onnx_facts(_model(shape=(1, 3, 64, 48)), "").input_shape == (1, 3, 64, 48)


def test_onnx_facts_of_a_real_sredge_export(exported_small):
    m = onnx.load(str(exported_small), load_external_data=False)
    f = onnx_facts(m, "x")
    assert f.precision == "fp32" and f.descriptor is not None and f.input_shape[1] == f.descriptor.in_channels
    assert f.input_shape[0] is None and f.input_shape[2:] == (None, None)


@pytest.mark.parametrize("kwargs,match", [({"inputs": 2}, "2 inputs"), ({"shape": ("N", 3, "H")}, "3 axes"),
                                          ({"shape": ("N", "C", "H", "W")}, "dynamic channel"),
                                          ({"dtype": TensorProto.INT8}, "not float32 or float16")])
def test_onnx_facts_refuses_non_sr_inputs(kwargs, match):
    with pytest.raises(InputError, match=match):
        onnx_facts(_model(**kwargs), "")


@pytest.fixture(scope="module")
def exported_small(tmp_path_factory):
    from sredge.runtime.bundled import default_model

    return default_model(2)


# ---------------------------------------------------------------- profiles


def test_profile_from_tile_max_tile_and_batch():
    opts = BuildOptions(tile=256, max_tile=512, batch=BatchRange(1, 4, 8))
    assert plan_profile(opts, facts()) == Profile((1, 3, 16, 16), (4, 3, 256, 256), (8, 3, 512, 512))


def test_profile_defaults():
    p = plan_profile(BuildOptions(), facts())
    assert p.opt == (1, 3, DEFAULT_TILE, DEFAULT_TILE) and p.max == p.opt and p.min == (1, 3, 16, 16)


def test_profile_luma_model_has_one_channel():
    y = dataclasses.replace(DESC, in_channels=1, out_channels=1, color_space="y")
    assert plan_profile(BuildOptions(tile=64), facts(shape=(None, 1, None, None), desc=y)).opt == (1, 1, 64, 64)


def test_profile_rounds_up_to_the_size_multiple():
    p = plan_profile(BuildOptions(tile=250, max_tile=509, min_tile=10), facts(desc=SWIN))
    assert (p.min[2], p.opt[2], p.max[2]) == (16, 256, 512)
    assert all(v % 8 == 0 for shape in (p.min, p.opt, p.max) for v in shape[2:])


def test_profile_foreign_model_uses_the_graph_channels():
    assert plan_profile(BuildOptions(tile=32), facts(desc=None)).opt == (1, 3, 32, 32)


def test_profile_fixed_shape_model():
    f = facts(shape=(None, 3, 128, 96))
    p = plan_profile(BuildOptions(batch=BatchRange(1, 2, 4)), f)
    assert p == Profile((1, 3, 128, 96), (2, 3, 128, 96), (4, 3, 128, 96))
    with pytest.raises(InputError, match="takes only 128x96 inputs"):
        plan_profile(BuildOptions(tile=256), f)
    with pytest.raises(InputError, match="takes only 128x96"):
        plan_profile(BuildOptions(max_tile=256), f)


def test_profile_fixed_batch():
    assert plan_profile(BuildOptions(batch=BatchRange(2, 2, 2)), facts(shape=(2, 3, None, None))).opt[0] == 2
    with pytest.raises(InputError, match="fixed batch of 1"):
        plan_profile(BuildOptions(batch=BatchRange(1, 4, 8)), facts(shape=(1, 3, None, None)))


@pytest.mark.parametrize("opts,match", [
    (BuildOptions(tile=512, max_tile=256), "<= --max-tile"),
    (BuildOptions(tile=8), "minimum tile 16 <= --tile 8"),
    (BuildOptions(tile=0), "must be positive"),
    (BuildOptions(tile=64, min_tile=0), "must be positive"),
    (BuildOptions(min_tile=300, max_tile=200), "need --min-tile 300 <= the default tile 200 <= --max-tile 200"),
    (BuildOptions(dla_core=0, fp16=True, batch=BatchRange(1, 2, 4)),
     r"min = opt = max\): give --batch 2:2:2; sr-run then tiles at --tile 256$"),
    (BuildOptions(dla_core=0, fp16=True, tile=96, max_tile=128), r"max\): drop --max-tile; sr-run"),
])
def test_profile_refuses_impossible_ranges(opts, match):
    with pytest.raises(InputError, match=match):
        plan_profile(opts, facts())


@pytest.mark.parametrize("opts,lo,opt,hi", [
    (BuildOptions(max_tile=128), 16, 128, 128),   # the TensorRT audit: named a --tile 256 never given
    (BuildOptions(min_tile=300), 300, 300, 300),  # ... and "minimum tile 300 <= --tile 256"
    (BuildOptions(min_tile=64, max_tile=512), 64, 256, 512),
    (BuildOptions(), 16, 256, 256),
])
def test_the_default_tile_stays_inside_the_bounds_given(opts, lo, opt, hi):
    prof = plan_profile(opts, facts())
    assert (prof.min[2], prof.opt[2], prof.max[2]) == (lo, opt, hi)


def test_profile_refuses_half_fixed_and_contradicting_metadata():
    with pytest.raises(InputError, match="both be fixed"):
        plan_profile(BuildOptions(), facts(shape=(None, 3, 64, None)))
    with pytest.raises(InputError, match="metadata says 3 input channels, its graph 1"):
        plan_profile(BuildOptions(), facts(shape=(None, 1, None, None)))


# ---------------------------------------------------------------- precision by TensorRT generation


def _flags(p):
    return (p.strongly_typed, p.fp16, p.int8, p.calibrate)


@pytest.mark.parametrize("features", [TRT10, TRT11])
@pytest.mark.parametrize("onnx_p", ["fp16", "int8"])
def test_typed_onnx_is_built_strongly_typed_where_available(features, onnx_p):
    p = plan_precision(BuildOptions(), facts(onnx_p), features)
    assert _flags(p) == (True, False, False, False)
    assert ("Q/DQ" if onnx_p == "int8" else "FP16") in p.summary


def test_requesting_what_the_onnx_already_is_changes_nothing():
    assert _flags(plan_precision(BuildOptions(int8=True), facts("int8"), TRT11)) == (True, False, False, False)
    assert _flags(plan_precision(BuildOptions(fp16=True), facts("fp16"), TRT11)) == (True, False, False, False)


def test_plain_fp32_onnx():
    assert _flags(plan_precision(BuildOptions(), facts(), TRT10)) == (True, False, False, False)
    assert _flags(plan_precision(BuildOptions(), facts(), TRT11)) == (True, False, False, False)
    p = plan_precision(BuildOptions(), facts(), TRT86)
    assert _flags(p) == (False, False, False, False) and p.summary == "FP32"


def test_tensorrt_10_fp16_flag_on_a_float_onnx():
    p = plan_precision(BuildOptions(fp16=True), facts(), TRT10)
    assert _flags(p) == (False, True, False, False) and "builder flag" in p.summary


def test_tensorrt_10_int8_calibration_of_a_float_onnx():
    p = plan_precision(BuildOptions(int8=True, calibration_fingerprint="c" * 64), facts(), TRT10)
    assert _flags(p) == (False, False, True, True) and "entropy calibration" in p.summary
    p = plan_precision(BuildOptions(int8=True, fp16=True, calibration_fingerprint="c" * 64), facts(), TRT10)
    assert _flags(p) == (False, True, True, True) and "with FP16" in p.summary


@pytest.mark.parametrize("features", [TRT10, TRT11])
def test_an_fp16_onnx_is_not_calibrated(features):
    with pytest.raises(InputError) as err:
        plan_precision(BuildOptions(int8=True, calibration_fingerprint="c" * 64), facts("fp16"), features)
    msg = str(err.value)
    assert "calibrates a float32 ONNX" in msg and "NAME.onnx" in msg and "--fp16" in msg and "\n" not in msg


def test_calibration_cache_origin_names_the_tensorrt_that_wrote_it():
    from sredge.export.engine_build import calibration_cache_origin

    assert calibration_cache_origin(b"TRT-8601-EntropyCalibration2\ninput: 3c010204\n") == \
        "TensorRT 8.6.1 (TRT-8601-EntropyCalibration2)"
    assert calibration_cache_origin(b"TRT-100300-EntropyCalibration2\n").startswith("TensorRT 10.3.0 (")
    assert calibration_cache_origin(b"TRT-101300-EntropyCalibration2").startswith("TensorRT 10.13.0 (")
    assert calibration_cache_origin(b"TRT-SIM-EntropyCalibration2\n") == "TRT-SIM-EntropyCalibration2"
    assert calibration_cache_origin(b"PK\x03\x04 an npz") == "no TRT-<version> line"


def test_int8_of_a_float_onnx_needs_calibration_data():
    with pytest.raises(InputError, match="needs calibration data: --calib DIR"):
        plan_precision(BuildOptions(int8=True), facts(), TRT10)


def test_qdq_onnx_with_fp16_uses_weak_typing_on_tensorrt_10():
    p = plan_precision(BuildOptions(fp16=True), facts("int8"), TRT10)
    assert _flags(p) == (False, True, True, False) and "other layers FP16" in p.summary


@pytest.mark.parametrize("opts", [BuildOptions(fp16=True), BuildOptions(int8=True, calibration_fingerprint="c")])
def test_tensorrt_11_refuses_builder_precision_for_a_float_onnx(opts):
    with pytest.raises(InputError) as err:
        plan_precision(opts, facts(), TRT11)
    msg = str(err.value)
    assert "strongly typed" in msg and "FP16 export or a Q/DQ INT8 ONNX" in msg and "\n" not in msg


def test_tensorrt_11_refuses_qdq_plus_fp16_mix():
    with pytest.raises(InputError, match="BuilderFlag.FP16"):
        plan_precision(BuildOptions(fp16=True), facts("int8"), TRT11)


def test_without_strongly_typed_typed_onnx_gets_the_matching_flag():
    assert _flags(plan_precision(BuildOptions(), facts("fp16"), TRT86)) == (False, True, False, False)
    assert _flags(plan_precision(BuildOptions(), facts("int8"), TRT86)) == (False, False, True, False)


def test_strongly_typed_only_is_told_by_the_missing_weak_typing_api():
    from sredge.export.engine_plan import strongly_typed_only

    assert strongly_typed_only(TRT11) and strongly_typed_only(TRT11_NO_FLAG)
    assert not strongly_typed_only(TRT10) and not strongly_typed_only(TRT86)
    assert not strongly_typed_only(frozenset())  # no builder flags at all: not taken for TensorRT 11


@pytest.mark.parametrize("onnx_p", ["fp32", "fp16", "int8"])
def test_tensorrt_11_builds_typed_onnx_even_without_the_deprecated_flag(onnx_p):
    # TensorRT 11 marks NetworkDefinitionCreationFlag.STRONGLY_TYPED deprecated and ignored; if it
    # disappears, builds must still plan (today's main refused every FP32 build there).
    for features in (TRT11, TRT11_NO_FLAG):
        p = plan_precision(BuildOptions(), facts(onnx_p), features)
        assert p.strongly_typed and not p.typed_flag and not (p.fp16 or p.int8 or p.calibrate)


def test_tensorrt_10_passes_the_strongly_typed_flag():
    p = plan_precision(BuildOptions(), facts("fp16"), TRT10)
    assert p.strongly_typed and p.typed_flag


def test_a_tensorrt_with_neither_api_is_refused():
    with pytest.raises(InputError, match="TensorRT 10 or newer"):
        plan_precision(BuildOptions(), facts(), frozenset())
    with pytest.raises(InputError, match="strongly typed"):
        plan_precision(BuildOptions(fp16=True), facts(), TRT11_NO_FLAG)


def test_calibration_data_that_would_be_ignored_is_refused():
    with pytest.raises(InputError, match="already carries its INT8 scales"):
        plan_precision(BuildOptions(int8=True, calibration_fingerprint="c"), facts("int8"), TRT10)
    with pytest.raises(InputError, match="it is for --int8"):
        plan_precision(BuildOptions(calibration_fingerprint="c"), facts(), TRT10)


def test_tf32_is_cleared_unless_asked():
    assert plan_precision(BuildOptions(), facts(), TRT10).clear_tf32 is True
    p = plan_precision(BuildOptions(tf32=True), facts(), TRT10)
    assert p.clear_tf32 is False and "TF32 allowed" in p.summary
    assert plan_precision(BuildOptions(), facts(), TRT11_NO_FLAG | {F_STRONGLY_TYPED}).clear_tf32 is False
    with pytest.raises(InputError, match="no TF32"):
        plan_precision(BuildOptions(tf32=True), facts(), TRT11_NO_FLAG | {F_STRONGLY_TYPED})


# ---------------------------------------------------------------- DLA


def test_dla_with_gpu_fallback():
    opts = BuildOptions(fp16=True, dla_core=1)
    d = plan_dla(opts, facts(), TRT10, dla_cores=2)
    assert (d.core, d.gpu_fallback) == (1, True)
    opts = BuildOptions(dla_core=0, gpu_fallback=False)
    d = plan_dla(opts, facts("fp16"), TRT11)
    assert (d.core, d.gpu_fallback) == (0, False)


@pytest.mark.parametrize("tile,expected", [(None, 256), (200, 200), (100, 104)])
def test_dla_gets_a_static_profile_at_the_tile_named(tile, expected):
    # Defect 2 of issue 13: DLA builds got the dynamic 16/256/256 profile; the DLA runs static shapes only.
    desc = SWIN if expected == 104 else DESC  # size multiple 8 rounds 100 up to 104
    opts = BuildOptions(tile=tile, fp16=True, dla_core=0)
    prof = plan_build(opts, facts(desc=desc), TRT10, dla_cores=1).profile
    assert prof.min == prof.opt == prof.max == (1, 3, expected, expected)


@pytest.mark.parametrize("opts", [BuildOptions(tile=128, max_tile=256, fp16=True, dla_core=0),
                                  BuildOptions(tile=128, batch=BatchRange(1, 2, 4), fp16=True, dla_core=0),
                                  BuildOptions(batch=BatchRange(1, 4, 4), fp16=True, dla_core=0)])
def test_dla_refuses_a_range_of_shapes(opts):
    with pytest.raises(InputError, match="the DLA runs one input shape"):
        plan_build(opts, facts(), TRT10, dla_cores=1)


def test_dla_on_a_fixed_shape_model_keeps_its_shape_and_needs_a_fixed_batch():
    f = facts(shape=(None, 3, 128, 96))
    prof = plan_build(BuildOptions(fp16=True, dla_core=0), f, TRT10, dla_cores=1).profile
    assert prof.min == prof.max == (1, 3, 128, 96)
    with pytest.raises(InputError, match="the DLA runs one input shape"):
        plan_build(BuildOptions(batch=BatchRange(1, 2, 4), fp16=True, dla_core=0), f, TRT10, dla_cores=1)


def test_no_dla_by_default():
    assert plan_dla(BuildOptions(), facts(), TRT10) is None


@pytest.mark.parametrize("opts,features,cores,match", [
    (BuildOptions(fp16=True, dla_core=2), TRT10, 2, "has cores 0..1"),
    (BuildOptions(fp16=True, dla_core=0), TRT10, 0, "has no DLA cores"),
    (BuildOptions(dla_core=0), TRT10, 2, "FP16 or INT8 only"),
    (BuildOptions(fp16=True, dla_core=0), TRT10 - {F_DLA}, None, "no DLA support"),
    (BuildOptions(fp16=True, dla_core=0), TRT10 - {F_GPU_FALLBACK}, None, "add --no-gpu-fallback"),
    (BuildOptions(fp16=True, dla_core=-1), TRT10, None, ">= 0"),
    (BuildOptions(gpu_fallback=False), TRT10, None, "only with --dla-core"),
])
def test_dla_refusals(opts, features, cores, match):
    with pytest.raises(InputError, match=match):
        plan_dla(opts, facts(), features, cores)


def test_plan_build_combines_everything():
    plan = plan_build(BuildOptions(tile=128, max_tile=256, batch=BatchRange(1, 2, 4), fp16=True,
                                   workspace_mb=512), facts(), TRT10, dla_cores=2)
    assert plan.input_name == "input" and plan.workspace_bytes == 512 << 20
    assert plan.profile.max == (4, 3, 256, 256) and plan.precision.fp16 and plan.dla is None
    plan = plan_build(BuildOptions(tile=128, batch=BatchRange(2, 2, 2), fp16=True, dla_core=0), facts(), TRT10,
                      dla_cores=2)
    assert plan.dla.core == 0 and plan.profile.min == plan.profile.opt == plan.profile.max == (2, 3, 128, 128)
    with pytest.raises(InputError, match="at least 1 MiB"):
        plan_build(BuildOptions(workspace_mb=0), facts(), TRT10)


# ---------------------------------------------------------------- cache key


def _key(f=None, opts=BuildOptions(), features=TRT10, version="10.3.0", dev=DEV):
    f = f or facts()
    return cache_key(f, opts, plan_build(opts, f, features), version, dev)


def test_cache_key_is_stable_and_hex():
    k = _key()
    assert k == _key() and len(k) == 64 and int(k, 16) >= 0


@pytest.mark.parametrize("change", [
    {"f": facts(sha="cd" * 32)},
    {"opts": BuildOptions(tile=128)},
    {"opts": BuildOptions(max_tile=512)},
    {"opts": BuildOptions(min_tile=32)},
    {"opts": BuildOptions(batch=BatchRange(1, 2, 4))},
    {"opts": BuildOptions(fp16=True)},
    {"opts": BuildOptions(tf32=True)},
    {"opts": BuildOptions(workspace_mb=256)},
    {"opts": BuildOptions(int8=True, calibration_fingerprint="a" * 64)},
    {"features": TRT86},  # same options, other flag selection
    {"version": "10.3.1"},
    {"dev": DeviceInfo("Orin", "8.6")},
    {"dev": DeviceInfo("NVIDIA GeForce RTX 4090", "8.7")},
    {"dev": DeviceInfo("Orin", "8.7", 8)},  # the TensorRT audit: an Orin Nano (8 SMs) is not an AGX Orin (16)
])
def test_cache_key_covers_everything_that_changes_the_engine(change):
    assert _key(**change) != _key()


def test_cache_key_calibration_data_changes_it():
    a = _key(opts=BuildOptions(int8=True, calibration_fingerprint="a" * 64))
    b = _key(opts=BuildOptions(int8=True, calibration_fingerprint="b" * 64))
    assert a != b


def test_fingerprint_files_is_order_independent_and_content_sensitive():
    a = fingerprint_files([("x.png", "1"), ("y.png", "2")])
    assert a == fingerprint_files([("y.png", "2"), ("x.png", "1")])
    assert a != fingerprint_files([("x.png", "1"), ("y.png", "3")])
    assert a != fingerprint_files([("x.png", "1")])


# ---------------------------------------------------------------- sidecar, staleness, runtime check


def test_sidecar_facts_round_trip_and_staleness(tmp_path):
    f, opts = facts(), BuildOptions(tile=128, batch=BatchRange(1, 2, 4))
    plan = plan_build(opts, f, TRT10)
    key = cache_key(f, opts, plan, "10.3.0", DEV)
    extra = sidecar_facts(key, f, plan, "10.3.0", DEV)
    engine = tmp_path / "m.engine"
    assert not is_up_to_date(engine, extra, key)  # no engine file yet
    engine.write_bytes(b"engine bytes")
    write_engine_sidecar(engine, f.descriptor, extra)
    back = read_engine_sidecar_extra(engine)
    assert back["build_key"] == key and back["profile"]["max"] == [4, 3, 128, 128]
    assert (back["tensorrt_version"], back["gpu_name"], back["compute_capability"]) == ("10.3.0", "Orin", "8.7")
    assert is_up_to_date(engine, back, key)
    assert not is_up_to_date(engine, back, _key(version="10.4.0"))  # stale: rebuilt
    assert not is_up_to_date(engine, {}, key)  # foreign engine without a sidecar: rebuilt


def test_runtime_refuses_an_engine_from_another_tensorrt_or_gpu():
    extra = {"tensorrt_version": "10.3.0", "gpu_name": "Orin", "compute_capability": "8.7"}
    check_engine_matches(extra, "10.3.0", "Orin", "8.7")
    check_engine_matches({}, "10.3.0", "Orin", "8.7")  # no recorded facts: a foreign engine, TensorRT decides
    with pytest.raises(InputError) as err:
        check_engine_matches(extra, "10.4.0", "Orin", "8.7", "m.engine")
    assert "m.engine was built for TensorRT 10.3.0 (here 10.4.0)" in str(err.value)
    assert "rebuild it here with sr-build" in str(err.value)
    with pytest.raises(InputError, match=r"GPU Orin \(here NVIDIA A100\).*compute capability 8.7 \(here 8.0\)"):
        check_engine_matches(extra, "10.3.0", "NVIDIA A100", "8.0")


def test_runtime_refuses_an_engine_from_another_jetson_module_or_an_unfinished_build(tmp_path):
    """The TensorRT audit: every Orin module is "Orin", 8.7; their multiprocessor counts differ."""
    extra = {"tensorrt_version": "10.3.0", "gpu_name": "Orin", "compute_capability": "8.7", "multiprocessors": 16}
    check_engine_matches(extra, "10.3.0", "Orin", "8.7", "m.engine", 16)
    check_engine_matches(extra, "10.3.0", "Orin", "8.7", "m.engine", 0)  # bindings that do not say: not compared
    check_engine_matches(extra | {"multiprocessors": 0}, "10.3.0", "Orin", "8.7", "m.engine", 8)  # nor unrecorded
    with pytest.raises(InputError, match=r"built for multiprocessor count 16 \(here 8\)"):
        check_engine_matches(extra, "10.3.0", "Orin", "8.7", "m.engine", 8)
    with pytest.raises(InputError, match="m.engine: sr-build stopped while writing it"):
        check_engine_matches({"built_by": "sr-build", "build_key": None, "incomplete": True}, "10.3.0", "Orin", "8.7",
                             "m.engine")
    a = default_timing_cache(tmp_path, "10.3.0", DeviceInfo("Orin", "8.7", 16))
    assert a != default_timing_cache(tmp_path, "10.3.0", DeviceInfo("Orin", "8.7", 8))


def test_default_timing_cache_is_per_tensorrt_and_gpu(tmp_path):
    a = default_timing_cache(tmp_path, "10.3.0", DEV)
    assert a.parent == tmp_path / "sredge" / "tensorrt" and a.suffix == ".cache"
    assert a != default_timing_cache(tmp_path, "10.4.0", DEV)
    assert a != default_timing_cache(tmp_path, "10.3.0", DeviceInfo("Orin", "8.6"))
    assert "/" not in default_timing_cache(tmp_path, "10.3.0", DeviceInfo("A/B C", "9.0")).name


# ---------------------------------------------------------------- calibration crops


def test_center_crop_and_pad():
    x = np.arange(1 * 1 * 6 * 8, dtype=np.float32).reshape(1, 1, 6, 8)
    c = center_crop(x, 4)
    assert c.shape == (1, 1, 4, 4) and c[0, 0, 0, 0] == x[0, 0, 1, 2]
    p = center_crop(x, 10)
    assert p.shape == (1, 1, 10, 10)
    np.testing.assert_array_equal(p[0, 0, :6, :8], x[0, 0])  # padded below/right, original kept
    assert center_crop(np.zeros((1, 3, 2, 2), np.float32), 16).shape == (1, 3, 16, 16)  # tiny: edge padding


def test_center_crop_to_a_non_square_opt_shape():
    # Defect 3 of issue 13: a fixed 128x96 input got square 128x128 calibration crops.
    x = np.arange(1 * 1 * 200 * 300, dtype=np.float32).reshape(1, 1, 200, 300)
    c = center_crop(x, 128, 96)
    assert c.shape == (1, 1, 128, 96) and c[0, 0, 0, 0] == x[0, 0, 36, 102]
    assert center_crop(np.zeros((1, 3, 50, 40), np.float32), 64, 80).shape == (1, 3, 64, 80)


# ---------------------------------------------------------------- Q/DQ encoding: TensorRT takes symmetric int8 only


@pytest.fixture(scope="module")
def int8_exports(tmp_path_factory):
    """FSRCNN x3 exported to INT8 by sr-export in both flavours, and the trt one with 7-bit weights (16 T91 crops),
    as loaded ONNX protos."""
    pytest.importorskip("torch")
    from sredge.cli import export
    from sredge.cli._app import run
    from tests.conftest import asset

    ckpt, calib = asset("weights/fsrcnn/fsrcnn_x3.pth"), asset("calibration/T91")
    folder = tmp_path_factory.mktemp("int8")
    models = {}
    for flavour in ("cpu", "trt", "trt7"):
        argv = [str(ckpt), "-o", str(folder / f"{flavour}.onnx"), "--precision", "int8", "--int8-flavour",
                flavour[:3], *(["--int8-weight-bits", "7"] if flavour == "trt7" else []),
                "--calib", str(calib), "--calib-crops", "16", "--calib-tile", "32", "--bench-size", "off", "-q"]
        assert run(export.PROG, export.main, argv) == 0
        models[flavour] = onnx.load(str(folder / f"{flavour}.int8.onnx"), load_external_data=False)
    return models


def _meta(model) -> dict:
    return {p.key: p.value for p in model.metadata_props}


def test_qdq_encoding_of_real_exports_of_both_flavours(int8_exports):
    from sredge.export.engine_plan import qdq_encoding

    cpu, trt = int8_exports["cpu"], int8_exports["trt"]
    assert '"int8-cpu"' in _meta(cpu).values() and '"int8-trt"' in _meta(trt).values()
    enc = qdq_encoding(cpu)
    assert not enc.tensorrt_int8 and enc.uint8 and enc.nonzero_zero_points  # ONNX Runtime's asymmetric uint8
    enc = qdq_encoding(trt)
    assert enc.tensorrt_int8 and not enc.uint8 and not enc.nonzero_zero_points
    assert qdq_encoding(_model()).tensorrt_int8  # no Q/DQ at all: nothing to object to


def test_sr_export_int8_weight_bits_7_is_tensorrt_int8_within_64(int8_exports):
    """--int8-weight-bits 7: the trt encoding with every weight integer within 64 (exact on x86 CPUs without VNNI)."""
    from sredge.export.engine_plan import qdq_encoding
    from sredge.runtime.backends.openvino import wide_int8_weights

    trt, trt7 = int8_exports["trt"], int8_exports["trt7"]
    assert qdq_encoding(trt7).tensorrt_int8 and '"int8-trt"' in _meta(trt7).values()
    assert wide_int8_weights(trt) and not wide_int8_weights(trt7)


@pytest.mark.parametrize("features", [TRT10, TRT11])
def test_planning_refuses_the_cpu_flavour_and_plans_the_trt_flavour(int8_exports, features):
    from sredge.export.engine_plan import preflight, qdq_encoding

    cpu, trt = int8_exports["cpu"], int8_exports["trt"]
    f = onnx_facts(cpu, "")
    assert f.precision == "int8"
    for call in (lambda: plan_build(BuildOptions(), f, features, qdq=qdq_encoding(cpu)),
                 lambda: preflight(BuildOptions(), f, qdq=qdq_encoding(cpu))):  # preflight: no TensorRT needed
        with pytest.raises(InputError) as err:
            call()
        msg = str(err.value)
        assert "--int8-flavour trt" in msg and "zero point" in msg and "\n" not in msg
    plan = plan_build(BuildOptions(), onnx_facts(trt, ""), features, qdq=qdq_encoding(trt))
    assert plan.precision.strongly_typed and "Q/DQ" in plan.precision.summary


@pytest.mark.parametrize("features", [TRT10, TRT11])
def test_planning_refuses_a_transposed_convolution_scaled_per_output_channel(int8_exports, features):
    """A trt-flavour file as sredge wrote it before 2026-11-29: FSRCNN's ConvTranspose weight (56, 1, 9, 9)
    dequantized on axis 1, ONNX Runtime's per-output-channel axis, which TensorRT's deconvolution kernels do
    not take. sr-export writes axis 0 now; the old form is refused before TensorRT is imported."""
    from sredge.export.engine_plan import preflight, qdq_encoding

    old = onnx.ModelProto()
    old.CopyFrom(int8_exports["trt"])
    produced = {o: n for n in old.graph.node for o in n.output}
    (deconv,) = [n for n in old.graph.node if n.op_type == "ConvTranspose"]
    dq = produced[deconv.input[1]]
    inits = {i.name: i for i in old.graph.initializer}
    assert [a.i for a in dq.attribute if a.name == "axis"] == [0] and tuple(inits[dq.input[1]].dims) == (56,)
    assert qdq_encoding(old).tensorrt_int8
    del dq.attribute[:]
    dq.attribute.append(helper.make_attribute("axis", 1))
    inits[dq.input[1]].CopyFrom(numpy_helper.from_array(np.array([0.01], np.float32), dq.input[1]))
    inits[dq.input[2]].CopyFrom(numpy_helper.from_array(np.array([0], np.int8), dq.input[2]))
    enc = qdq_encoding(old)
    assert enc.deconv_output_axis == (dq.input[0],) and not enc.tensorrt_int8
    for call in (lambda: plan_build(BuildOptions(), onnx_facts(old, ""), features, qdq=enc),
                 lambda: preflight(BuildOptions(), onnx_facts(old, ""), qdq=enc)):
        with pytest.raises(InputError) as err:
            call()
        msg = str(err.value)
        assert "ConvTranspose weights scaled per output channel" in msg and "export it again" in msg
        assert "\n" not in msg
    scalar = numpy_helper.from_array(np.array(0.01, np.float32), dq.input[1])  # one scale: any axis reads the same
    inits[dq.input[1]].CopyFrom(scalar)
    assert qdq_encoding(old).tensorrt_int8


def test_a_foreign_qdq_file_is_judged_by_its_tensors_not_its_metadata(int8_exports):
    from sredge.export.engine_plan import qdq_encoding

    cpu = onnx.ModelProto()
    cpu.CopyFrom(int8_exports["cpu"])
    del cpu.metadata_props[:]  # a foreign file: no sredge metadata at all
    assert onnx_facts(cpu, "").descriptor is None
    with pytest.raises(InputError, match="--int8-flavour trt"):
        plan_build(BuildOptions(), onnx_facts(cpu, ""), TRT10, qdq=qdq_encoding(cpu))


def _qdq_model(zero, dtype, output_dtype=None):
    """_model(qdq=True) with another activation zero point (``output_dtype``: opset 21's attribute, no zero point)."""
    m = _model(qdq=True)
    z = next(t for t in m.graph.initializer if t.name == "z")
    z.CopyFrom(numpy_helper.from_array(np.array(zero, dtype), "z"))
    if output_dtype is not None:
        q = m.graph.node[0]
        del q.input[2:]
        q.attribute.append(helper.make_attribute("output_dtype", output_dtype))
    return m


@pytest.mark.parametrize("model,uint8,nonzero", [
    (_qdq_model(0, np.int8), False, False),
    (_qdq_model(3, np.int8), False, True),  # int8 but asymmetric
    (_qdq_model(0, np.uint8), True, False),  # symmetric but uint8
    (_qdq_model(128, np.uint8), True, True),
    (_qdq_model(0, np.int8, output_dtype=TensorProto.UINT8), True, False),
])
def test_qdq_encoding_of_each_zero_point(model, uint8, nonzero):
    from sredge.export.engine_plan import qdq_encoding

    enc = qdq_encoding(model)
    assert (bool(enc.uint8), bool(enc.nonzero_zero_points)) == (uint8, nonzero)
    f = onnx_facts(model, "")
    if uint8 or nonzero:
        with pytest.raises(InputError, match="--int8-flavour trt"):
            plan_precision(BuildOptions(), f, TRT10, qdq=enc)
    else:
        assert "Q/DQ" in plan_precision(BuildOptions(), f, TRT10, qdq=enc).summary


def test_qdq_encoding_reads_zero_points_from_constant_nodes():
    from sredge.export.engine_plan import qdq_encoding

    m = _model(qdq=True)
    del m.graph.initializer[2]  # "z" becomes a Constant node
    m.graph.node.insert(0, helper.make_node("Constant", [], ["z"], value=numpy_helper.from_array(np.uint8(7))))
    enc = qdq_encoding(m)
    assert enc.uint8 and enc.nonzero_zero_points == ("z",)


# ---------------------------------------------------------------- preflight: every refusal that needs no TensorRT


@pytest.mark.parametrize("opts,f,match", [
    (BuildOptions(tile=0), facts(), "must be positive"),
    (BuildOptions(tile=256, min_tile=512), facts(), "--min-tile 512 <= --tile 256"),
    (BuildOptions(gpu_fallback=False), facts(), "only with --dla-core"),
    (BuildOptions(fp16=True, dla_core=-1), facts(), ">= 0"),
    (BuildOptions(dla_core=0), facts(), "FP16 or INT8 only"),
    (BuildOptions(workspace_mb=-1), facts(), "at least 1 MiB"),
    (BuildOptions(int8=True), facts(), "needs calibration data"),
    (BuildOptions(calibration_fingerprint="c"), facts(), "it is for --int8"),
    (BuildOptions(int8=True, calibration_fingerprint="c"), facts("int8"), "already carries its INT8 scales"),
    (BuildOptions(tile=64), facts(shape=(None, 3, 128, 96)), "takes only 128x96"),
])
def test_preflight_refuses_what_plan_build_refuses_on_every_tensorrt(opts, f, match):
    from sredge.export.engine_plan import preflight

    with pytest.raises(InputError, match=match):
        preflight(opts, f)
    for features in (TRT10, TRT11, TRT86):  # the same refusal, whatever the TensorRT
        with pytest.raises(InputError, match=match):
            plan_build(opts, f, features, dla_cores=2)


def test_preflight_returns_the_profile_plan_build_uses():
    from sredge.export.engine_plan import preflight

    opts = BuildOptions(tile=128, max_tile=256, batch=BatchRange(1, 2, 4))
    assert preflight(opts, facts()) == plan_build(opts, facts(), TRT10).profile


def test_a_qdq_onnx_is_refused_for_the_dla_on_every_tensorrt():
    """The DLA quantizes implicitly (by calibration) only: Q/DQ layers are not DLA layers (NVIDIA/TensorRT#2222,
    NVIDIA-AI-IOT/cuDLA-samples#19). sredge built a Q/DQ ONNX for the DLA with the INT8 flag, as supported."""
    from sredge.export.engine_plan import preflight

    for features in (TRT10, TRT11):
        with pytest.raises(InputError, match="the DLA runs INT8 only by calibration .* not from a Q/DQ ONNX"):
            plan_build(BuildOptions(dla_core=0), facts("int8"), features)
    with pytest.raises(InputError, match="--int8 --calib DIR"):  # told before TensorRT is imported
        preflight(BuildOptions(dla_core=0), facts("int8"))
    assert plan_precision(BuildOptions(), facts("int8"), TRT10).strongly_typed  # the GPU takes it


@pytest.mark.parametrize("onnx_p,flags,words", [
    ("fp16", (False, True, False, False), "in the ONNX (builder flag, as TensorRT 10 builds for the DLA)"),
])
def test_tensorrt_10_builds_typed_onnx_for_the_dla_by_precision_flags(onnx_p, flags, words):
    """TensorRT 10 (JetPack 6's 10.3) documents DLA builds with FP16/INT8 flags only; strongly typed DLA
    builds are documented from 11.4.1. The same ONNX for the GPU stays strongly typed, and TensorRT 11
    (no flags) builds it strongly typed for the DLA too."""
    p = plan_precision(BuildOptions(dla_core=0), facts(onnx_p), TRT10)
    assert _flags(p) == flags and words in p.summary
    assert plan_precision(BuildOptions(), facts(onnx_p), TRT10).strongly_typed
    p = plan_precision(BuildOptions(dla_core=0), facts(onnx_p), TRT11)
    assert p.strongly_typed and not (p.fp16 or p.int8)
