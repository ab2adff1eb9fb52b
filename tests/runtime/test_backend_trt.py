"""The TensorRT backend: its pure planning functions, the engine sidecar, the missing-extra
error, and (where TensorRT and a GPU exist) a real engine built from a small ONNX and
compared with ONNX Runtime.

The stand-in classes below only carry attributes for the feature-detection functions;
no test fakes TensorRT to pretend an engine ran.
"""

from __future__ import annotations

import enum
import importlib.util
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sredge.errors import InputError, MissingDependencyError
from sredge.models.descriptor import ModelDescriptor
from sredge.runtime.backends import BackendOptions, open_backend
from sredge.runtime.backends.trt import (
    BUFFER_GRANULARITY,
    CONTEXT_API,
    ENGINE_API,
    CudaError,
    IoPlan,
    TensorInfo,
    TrtBackend,
    check_options,
    check_resolved_shape,
    check_shape_in_profile,
    cuda_value,
    dtype_name,
    grown_capacity,
    import_cuda_runtime,
    missing_trt_api,
    nbytes,
    numpy_dtype,
    plan_io,
    profile_bounds,
    read_engine_sidecar,
    read_engine_sidecar_extra,
    sidecar_path,
    spec_from_profile,
    write_engine_sidecar,
)

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None
needs_trt = pytest.mark.skipif(
    not HAVE_TRT, reason='TensorRT is not installed (pip install "sredge[trt]" on a machine with an NVIDIA GPU)'
)

DESC = ModelDescriptor(
    arch="espcn", scale=2, in_channels=3, out_channels=3, color_space="rgb", value_range=1.0,
    pre_upsample=False, num_params=1234, variant="espcn_x2",
)


def _t(name, is_input, shape=(-1, 3, -1, -1), dtype="FLOAT"):
    return TensorInfo(name, is_input, tuple(shape), dtype)


# ---------------------------------------------------------------- dtypes


class _DataType(enum.Enum):
    """Carries only what TensorRT's DataType enum members carry: a ``name``."""

    FLOAT = 0
    HALF = 1
    BF16 = 7


def test_dtype_name_accepts_enum_members_and_strings():
    assert dtype_name(_DataType.HALF) == "HALF"
    assert dtype_name("DataType.FLOAT") == "FLOAT"
    assert dtype_name("half") == "HALF"


@pytest.mark.parametrize(
    "trt_name,np_type",
    [("FLOAT", np.float32), ("HALF", np.float16), ("INT8", np.int8), ("UINT8", np.uint8),
     ("INT32", np.int32), ("INT64", np.int64), ("BOOL", np.bool_)],
)
def test_numpy_dtype_mapping(trt_name, np_type):
    assert numpy_dtype(trt_name) == np.dtype(np_type)


@pytest.mark.parametrize("name", ["BF16", "FP8", "INT4", "FP4"])
def test_numpy_dtype_refuses_types_numpy_lacks(name):
    with pytest.raises(InputError, match=f"{name} has no numpy equivalent"):
        numpy_dtype(name)
    with pytest.raises(InputError, match="BF16"):
        numpy_dtype(_DataType.BF16)


# ---------------------------------------------------------------- I/O plan


def test_plan_io_picks_input_and_output_in_any_order():
    plan = plan_io([_t("out", False, (-1, 3, -1, -1), "HALF"), _t("in", True, (-1, 3, -1, -1), "HALF")])
    assert isinstance(plan, IoPlan)
    assert (plan.input.name, plan.output.name) == ("in", "out")
    assert plan.input_dtype == np.float16 and plan.output_dtype == np.float16


def test_plan_io_mixed_precision_io():
    plan = plan_io([_t("x", True, dtype="HALF"), _t("y", False, dtype="FLOAT")])
    assert (plan.input_dtype, plan.output_dtype) == (np.dtype(np.float16), np.dtype(np.float32))


@pytest.mark.parametrize(
    "tensors,match",
    [
        ([_t("a", True), _t("b", True), _t("y", False)], r"2 input\(s\) \(a, b\) and 1 output"),
        ([_t("x", True), _t("y", False), _t("z", False)], r"1 input\(s\) \(x\) and 2 output\(s\) \(y, z\)"),
        ([_t("y", False)], r"0 input\(s\) \(none\)"),
        ([_t("x", True)], r"0 output\(s\) \(none\)"),
        ([], "exactly one image input"),
    ],
)
def test_plan_io_refuses_other_than_one_input_and_one_output(tensors, match):
    with pytest.raises(InputError, match=match):
        plan_io(tensors)


def test_plan_io_refuses_non_image_tensors():
    with pytest.raises(InputError, match=r"input 'x' has shape \(1, 3, 8\); expected \(N, C, H, W\)"):
        plan_io([_t("x", True, (1, 3, 8)), _t("y", False)])
    with pytest.raises(InputError, match="output 'y' is INT8"):
        plan_io([_t("x", True), _t("y", False, dtype="INT8")])
    with pytest.raises(InputError, match="dynamic channel axis"):
        plan_io([_t("x", True, (-1, -1, -1, -1)), _t("y", False)])


# ---------------------------------------------------------------- profiles and input specs


def test_profile_bounds_static_engine_needs_no_profile():
    assert profile_bounds((1, 3, 64, 64), None) == ((1, 3, 64, 64), (1, 3, 64, 64))


def test_profile_bounds_dynamic_engine_uses_min_and_max():
    prof = [(1, 3, 16, 16), (4, 3, 256, 256), (8, 3, 512, 512)]
    assert profile_bounds((-1, 3, -1, -1), prof) == ((1, 3, 16, 16), (8, 3, 512, 512))


def test_profile_bounds_refuses_missing_or_mismatched_profiles():
    with pytest.raises(InputError, match="no optimization profile 0"):
        profile_bounds((-1, 3, -1, -1), None)
    with pytest.raises(InputError, match="does not match its input rank"):
        profile_bounds((-1, 3, -1, -1), [(1, 3, 16), (1, 3, 16), (1, 3, 16)])


def test_spec_dynamic_hw():
    spec = spec_from_profile((-1, 3, -1, -1), (1, 3, 16, 24), (8, 3, 512, 768))
    assert (spec.channels, spec.height, spec.width, spec.fixed_hw) == (3, None, None, None)
    assert (spec.max_batch, spec.min_hw, spec.max_hw) == (8, (16, 24), (512, 768))


def test_spec_fixed_hw_dynamic_batch():
    spec = spec_from_profile((-1, 1, 128, 96), (1, 1, 128, 96), (4, 1, 128, 96))
    assert (spec.channels, spec.fixed_hw, spec.max_batch) == (1, (128, 96), 4)
    assert spec.min_hw == spec.max_hw == (128, 96)


def test_spec_fully_static_engine():
    lo, hi = profile_bounds((2, 3, 64, 80), None)
    spec = spec_from_profile((2, 3, 64, 80), lo, hi)
    assert (spec.fixed_hw, spec.max_batch, spec.min_hw, spec.max_hw) == ((64, 80), 2, (64, 80), (64, 80))
    assert spec.batch_fixed  # a batch of 1 is filled to 2 (TrtBackend._submit), as ONNX Runtime's are


def test_spec_says_when_every_call_runs_the_whole_batch():
    """A DLA engine's profile is min = opt = max (--batch 4:4:4): sr-run's batches of 1 were refused."""
    assert spec_from_profile((-1, 3, -1, -1), (4, 3, 64, 64), (4, 3, 64, 64)).batch_fixed
    assert not spec_from_profile((-1, 3, -1, -1), (2, 3, 16, 16), (8, 3, 64, 64)).batch_fixed  # 1 is filled to 2
    assert not spec_from_profile((-1, 3, -1, -1), (1, 3, 16, 16), (8, 3, 64, 64)).batch_fixed


def test_a_profile_of_one_shape_is_a_fixed_shape():
    """The TensorRT audit: a DLA engine (min = opt = max 96x96) was tiled like a dynamic one, into tiles of at
    most 96 (66x90 for a 100x90 image), every one of which the engine refused."""
    spec = spec_from_profile((-1, 3, -1, -1), (1, 3, 96, 96), (1, 3, 96, 96))
    assert spec.fixed_hw == (96, 96)


def test_spec_dynamic_width_only():
    spec = spec_from_profile((1, 3, 64, -1), (1, 3, 64, 8), (1, 3, 64, 1024))
    assert (spec.height, spec.width, spec.max_batch, spec.max_hw) == (64, None, 1, (64, 1024))


# ---------------------------------------------------------------- shape checks

LO, HI = (1, 3, 16, 16), (4, 3, 256, 320)


@pytest.mark.parametrize("shape", [(1, 3, 16, 16), (4, 3, 256, 320), (2, 3, 100, 17), (3, 3, 256, 16)])
def test_shapes_inside_the_profile_pass(shape):
    check_shape_in_profile(shape, LO, HI)


def test_batch_outside_profile_names_range_and_rebuild_flag():
    with pytest.raises(InputError,
                       match=r"batch 5 is outside the engine's profile \(batch 1\.\.4\).*sr-build --batch 5"):
        check_shape_in_profile((5, 3, 64, 64), LO, HI)


@pytest.mark.parametrize("h,w", [(300, 64), (64, 321), (15, 64), (64, 8)])
def test_tile_outside_profile_names_range_and_rebuild_flag(h, w):
    with pytest.raises(InputError) as err:
        check_shape_in_profile((1, 3, h, w), LO, HI)
    msg = str(err.value)
    assert f"tile {h}x{w}" in msg and "16x16 up to 256x320" in msg
    # too small: the profile's minimum is what to lower (the TensorRT audit: it said --max-tile 64 for a 15x64 tile)
    assert (f"sr-build --min-tile {min(h, w)}" if min(h, w) < 16 else f"sr-build --max-tile {max(h, w)}") in msg


def test_fixed_engine_says_which_tile_it_takes():
    with pytest.raises(InputError, match="the engine takes only 64x64 tiles"):
        check_shape_in_profile((1, 3, 64, 48), (1, 3, 64, 64), (1, 3, 64, 64))


def test_wrong_rank_or_channels():
    with pytest.raises(InputError, match=r"takes \(N, C, H, W\)"):
        check_shape_in_profile((3, 64, 64), LO, HI)
    with pytest.raises(InputError, match="input has 1 channels; the engine takes 3"):
        check_shape_in_profile((1, 1, 64, 64), LO, HI)


def test_check_resolved_shape():
    assert check_resolved_shape("y", [1, 3, 64, 64]) == (1, 3, 64, 64)
    with pytest.raises(InputError, match="could not resolve the shape of output 'y'"):
        check_resolved_shape("y", (1, 3, -1, 64))


# ---------------------------------------------------------------- buffers


def test_nbytes():
    assert nbytes((2, 3, 64, 64), np.float32) == 2 * 3 * 64 * 64 * 4
    assert nbytes((2, 3, 64, 64), "HALF") == 2 * 3 * 64 * 64 * 2
    assert nbytes((2, 3, 64, 64), _DataType.HALF) == 2 * 3 * 64 * 64 * 2
    assert nbytes((1, 3, 5, 7), "float16") == 210
    assert nbytes((0, 3, 5, 7), np.float32) == 0
    with pytest.raises(ValueError, match="unresolved shape"):
        nbytes((-1, 3, 64, 64), np.float32)


def test_growth_policy_reuses_then_grows_to_the_largest_seen():
    mib = BUFFER_GRANULARITY
    assert grown_capacity(0, 1) == mib  # first allocation, rounded up
    assert grown_capacity(mib, mib) == mib  # exact fit: reuse
    assert grown_capacity(4 * mib, 100) == 4 * mib  # a smaller tile never shrinks or reallocates
    assert grown_capacity(mib, mib + 1) == 2 * mib  # larger batch/tile: grow
    assert grown_capacity(0, 3 * mib) == 3 * mib
    assert grown_capacity(0, 10, granularity=8) == 16


def test_growth_policy_over_a_frame_sequence_allocates_only_on_growth():
    capacity, allocations = 0, 0
    tiles = [(1, 3, 256, 256)] * 5 + [(1, 3, 256, 100)] * 3 + [(4, 3, 256, 256)] + [(1, 3, 256, 256)] * 5
    for shape in tiles:
        new = grown_capacity(capacity, nbytes(shape, np.float32))
        allocations += new != capacity
        capacity = new
    assert allocations == 2
    assert capacity >= nbytes((4, 3, 256, 256), np.float32)


def test_growth_policy_rejects_nonsense():
    with pytest.raises(ValueError):
        grown_capacity(0, -1)
    with pytest.raises(ValueError):
        grown_capacity(0, 1, granularity=0)


# ---------------------------------------------------------------- API feature detection


class _EngineV10:
    """Only attributes: the names the TensorRT 10/11 ICudaEngine exposes."""

    num_io_tensors = 2
    get_tensor_name = get_tensor_mode = get_tensor_shape = get_tensor_dtype = get_tensor_format = None
    get_tensor_profile_shape = create_execution_context = None


class _ContextV10:
    set_input_shape = get_tensor_shape = set_tensor_address = execute_async_v3 = None


class _EngineV8:
    """TensorRT 8.x binding-index API."""

    num_bindings = 2
    get_binding_shape = get_binding_dtype = binding_is_input = create_execution_context = None


class _ContextV8:
    set_binding_shape = execute_async_v2 = None


def test_feature_detection_accepts_the_name_based_api():
    assert missing_trt_api(_EngineV10()) == []
    assert missing_trt_api(_EngineV10(), _ContextV10()) == []


def test_feature_detection_names_what_an_old_tensorrt_lacks():
    missing = missing_trt_api(_EngineV8(), _ContextV8())
    assert "ICudaEngine.num_io_tensors" in missing
    assert "ICudaEngine.get_tensor_profile_shape" in missing
    assert "IExecutionContext.execute_async_v3" in missing
    assert "ICudaEngine.create_execution_context" not in missing
    assert len(missing) == len(ENGINE_API) - 1 + len(CONTEXT_API)


def test_cuda_runtime_module_is_picked_by_feature():
    import types

    new, old = types.ModuleType("cuda.bindings.runtime"), types.ModuleType("cuda.cudart")
    tried = []

    def importer(available):
        def imp(name):
            tried.append(name)
            if name not in available:
                raise ImportError(name)
            return {"cuda.bindings.runtime": new, "cuda.cudart": old}[name]

        return imp

    assert import_cuda_runtime(importer({"cuda.bindings.runtime", "cuda.cudart"})).module is new
    assert import_cuda_runtime(importer({"cuda.cudart"})).module is old  # cuda-python < 12.6
    tried.clear()
    with pytest.raises(MissingDependencyError, match=r'cuda-python is not installed.*pip install "sredge\[trt\]"'):
        import_cuda_runtime(importer(set()))
    assert tried == ["cuda.bindings.runtime", "cuda.cudart"]


def test_cuda_runtime_really_missing_names_the_trt_extra(monkeypatch):
    for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError) as err:
        import_cuda_runtime()
    assert 'pip install "sredge[trt]"' in str(err.value) and "\n" not in str(err.value)


class _CudaError(enum.IntEnum):
    """Carries what cuda-python's cudaError_t carries: an int value and a name."""

    cudaSuccess = 0
    cudaErrorMemoryAllocation = 2
    cudaErrorInsufficientDriver = 35
    cudaErrorNoDevice = 100
    cudaErrorLaunchFailure = 719


def test_cuda_value_unpacks_results():
    assert cuda_value((_CudaError.cudaSuccess,), "cudaFree") is None
    assert cuda_value((_CudaError.cudaSuccess, 1234), "cudaMalloc") == 1234
    assert cuda_value((_CudaError.cudaSuccess, 1, 2), "x") == (1, 2)
    assert cuda_value(_CudaError.cudaSuccess, "bare") is None


@pytest.mark.parametrize(
    "err,match",
    [
        (_CudaError.cudaErrorMemoryAllocation,
         r"cudaMalloc\(8 bytes\) failed with cudaErrorMemoryAllocation \(2\): out of GPU memory, use a smaller --tile"),
        (_CudaError.cudaErrorNoDevice, "no usable NVIDIA GPU"),
        (_CudaError.cudaErrorLaunchFailure, r"failed with cudaErrorLaunchFailure \(719\)$"),
        (3, r"failed with error 3 \(3\)"),
    ],
)
def test_cuda_value_raises_with_the_call_and_error_name(err, match):
    with pytest.raises(CudaError, match=match):
        cuda_value((err, 0), "cudaMalloc(8 bytes)")


def test_an_old_driver_names_the_cuda_python_that_fits_it():
    """The review: cuda-python 13 needs driver 580+, JetPack 6 has 540, and the error said only "no usable GPU".
    CUDA gives the same error with no driver at all (the real cuda-bindings 13.0.3 on this machine), so the
    line names both causes."""
    from sredge.runtime.backends.cuda_rt import insufficient_driver_hint

    with pytest.raises(CudaError, match="cudaErrorInsufficientDriver .*: no usable NVIDIA GPU/driver .* or the "
                                        "driver is older than"):
        cuda_value((_CudaError.cudaErrorInsufficientDriver,), "cudaGetDeviceCount")
    assert 'older than cuda-python 13.0.3 (CUDA 13) needs; for an older driver, pip install "cuda-python<13"' \
        in insufficient_driver_hint("13.0.3")
    assert "older than this cuda-python needs" in insufficient_driver_hint("unknown")


# ---------------------------------------------------------------- options and construction


def test_options_tensorrt_cannot_honour_are_refused():
    check_options(BackendOptions())
    check_options(BackendOptions(device="cuda"))
    with pytest.raises(InputError, match="only on an NVIDIA GPU"):
        check_options(BackendOptions(device="cpu"))
    with pytest.raises(InputError, match="drop --threads"):
        check_options(BackendOptions(threads=4))
    with pytest.raises(InputError, match="precision is fixed when it is built"):
        check_options(BackendOptions(fp16=True))
    with pytest.raises(InputError, match="unknown device"):
        check_options(BackendOptions(device="gpu0"))


def test_construction_is_cheap_and_lazy(tmp_path):
    be = open_backend("trt", tmp_path / "missing.engine")  # no file access, no imports
    assert isinstance(be, TrtBackend) and be.name == "trt"
    with pytest.raises(RuntimeError, match="outside its 'with' block"):
        be.run(np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(InputError, match="only on an NVIDIA GPU"):
        TrtBackend(tmp_path / "m.engine", BackendOptions(device="cpu"))


def test_enter_without_tensorrt_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # what an install without the extra sees
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0" * 16)
    be = TrtBackend(engine, BackendOptions())
    with pytest.raises(MissingDependencyError) as err:
        be.__enter__()
    msg = str(err.value)
    assert 'pip install "sredge[trt]"' in msg and "\n" not in msg


def test_module_imports_without_tensorrt_torch_or_cuda():
    code = textwrap.dedent("""
        import sys
        for m in ('tensorrt', 'torch', 'cuda'):
            sys.modules[m] = None
        import sredge.runtime.backends.trt as t
        be = t.TrtBackend('x.engine')
        try:
            be.__enter__()
        except t.MissingDependencyError as e:
            print('refused:', e)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("refused: tensorrt is not installed")
    assert 'pip install "sredge[trt]"' in proc.stdout


# ---------------------------------------------------------------- sidecar


def test_sidecar_round_trip(tmp_path):
    engine = tmp_path / "espcn_x2.engine"
    extra = {"tensorrt": "10.3.0", "gpu": "Orin", "onnx_sha256": "ab" * 32,
             "profile": [[1, 3, 16, 16], [4, 3, 512, 512]]}
    path = write_engine_sidecar(engine, DESC, extra)
    assert path == sidecar_path(engine) == tmp_path / "espcn_x2.engine.json"
    data = json.loads(path.read_text())
    assert {k: v for k, v in data.items() if k.startswith("sredge.")} == DESC.to_metadata()
    assert read_engine_sidecar(engine) == DESC
    assert read_engine_sidecar_extra(engine) == extra
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left no temporary behind


def test_sidecar_path_appends_to_the_full_name(tmp_path):
    assert sidecar_path(tmp_path / "a.b.plan").name == "a.b.plan.json"


def test_missing_sidecar_means_a_foreign_engine(tmp_path):
    assert read_engine_sidecar(tmp_path / "foreign.engine") is None
    assert read_engine_sidecar_extra(tmp_path / "foreign.engine") == {}


def test_sidecar_without_descriptor_is_a_foreign_model(tmp_path):
    engine = tmp_path / "f.engine"
    write_engine_sidecar(engine, None, {"tensorrt": "10.3.0"})
    assert read_engine_sidecar(engine) is None
    assert read_engine_sidecar_extra(engine) == {"tensorrt": "10.3.0"}


def test_sidecar_refuses_extra_keys_in_the_descriptor_namespace(tmp_path):
    with pytest.raises(ValueError, match="sredge.scale"):
        write_engine_sidecar(tmp_path / "m.engine", DESC, {"sredge.scale": "4"})
    assert not sidecar_path(tmp_path / "m.engine").exists()


@pytest.mark.parametrize(
    "content,match",
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "JSON list, not an object"),
        ('{"sredge.arch": "\\"espcn\\""}', "incomplete sredge metadata"),
        ('{"sredge.scale": 2}', "not JSON-encoded strings"),
    ],
)
def test_malformed_sidecars_are_input_errors(tmp_path, content, match):
    engine = tmp_path / "m.engine"
    sidecar_path(engine).write_text(content)
    with pytest.raises(InputError, match=match):
        read_engine_sidecar(engine)


def test_descriptor_needs_no_tensorrt(tmp_path):
    engine = tmp_path / "m.engine"
    write_engine_sidecar(engine, DESC, {})
    assert TrtBackend(engine).descriptor() == DESC


# ---------------------------------------------------------------- real TensorRT (GPU machines)


def _onnx_model(fp16_io: bool = False, seed: int = 0) -> bytes:
    """A tiny x2 SR network: 3x3 conv 3->12 channels, then DepthToSpace (PixelShuffle order)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weight = (rng.standard_normal((12, 3, 3, 3)) * 0.2).astype(np.float32)
    bias = (rng.standard_normal(12) * 0.1).astype(np.float32)
    ftype = TensorProto.FLOAT16 if fp16_io else TensorProto.FLOAT
    ndtype = np.float16 if fp16_io else np.float32
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("DepthToSpace", ["c"], ["y"], blocksize=2, mode="CRD"),
    ]
    graph = helper.make_graph(
        nodes, "tiny_sr",
        [helper.make_tensor_value_info("x", ftype, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("y", ftype, ["N", 3, "H2", "W2"])],
        [numpy_helper.from_array(weight.astype(ndtype), "w"), numpy_helper.from_array(bias.astype(ndtype), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _build_engine(onnx_bytes: bytes, path, min_shape, opt_shape, max_shape) -> None:
    """Build a strongly typed engine (I/O types as in the ONNX); works on TensorRT 10 and 11."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    strongly = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    network = builder.create_network(0 if strongly is None else 1 << int(strongly))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise AssertionError(f"TensorRT could not parse the test ONNX: {errors}")
    config = builder.create_builder_config()
    if hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # compare float32 against ONNX Runtime tightly
    profile = builder.create_optimization_profile()
    profile.set_shape("x", min_shape, opt_shape, max_shape)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    assert serialized is not None, "TensorRT failed to build the test engine"
    path.write_bytes(bytes(serialized))


def _ort(onnx_bytes: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """(fp32 engine, fp16-I/O engine, fp32 ONNX bytes), built once; needs TensorRT and a GPU."""
    folder = tmp_path_factory.mktemp("trt")
    onnx32 = _onnx_model()
    e32, e16 = folder / "tiny_x2.engine", folder / "tiny_x2_fp16.plan"
    prof = ((1, 3, 8, 8), (2, 3, 32, 32), (2, 3, 64, 64))
    _build_engine(onnx32, e32, *prof)
    _build_engine(_onnx_model(fp16_io=True), e16, *prof)
    return e32, e16, onnx32


@needs_trt
def test_real_engine_matches_onnxruntime(engines):
    e32, _, onnx32 = engines
    write_engine_sidecar(e32, DESC, {"tensorrt": "test"})
    rng = np.random.default_rng(1)
    with open_backend("trt", e32) as be:
        spec = be.input_spec()
        assert (spec.channels, spec.height, spec.width) == (3, None, None)
        assert (spec.max_batch, spec.min_hw, spec.max_hw) == (2, (8, 8), (64, 64))
        assert be.descriptor() == DESC
        assert be.describe().startswith("tensorrt ") and "float32->float32" in be.describe()
        for shape in [(2, 3, 32, 48), (1, 3, 17, 9), (2, 3, 64, 64)]:
            x = rng.random(shape, dtype=np.float32)
            y = be.run(x)
            assert y.dtype == np.float32 and y.shape == (shape[0], 3, shape[2] * 2, shape[3] * 2)
            np.testing.assert_allclose(y, _ort(onnx32, x), atol=2e-3, rtol=1e-3)


@needs_trt
def test_real_engine_reuses_buffers_and_grows_only_for_larger_inputs(engines):
    e32 = engines[0]

    def allocations(be):  # run() is one batch through the pipeline's first slot
        return tuple(buf.allocations for buf in be._slots[0].buffers())

    with TrtBackend(e32) as be:
        be.run(np.zeros((1, 3, 64, 64), np.float32))
        first = allocations(be)
        assert first == (1, 1, 1, 1)
        for _ in range(5):  # same size and smaller tiles: no reallocation
            be.run(np.zeros((1, 3, 64, 64), np.float32))
            be.run(np.zeros((1, 3, 20, 30), np.float32))
        assert allocations(be) == first
        be.run(np.zeros((2, 3, 64, 64), np.float32))  # a larger batch may grow the buffers...
        grown = allocations(be)
        be.run(np.zeros((2, 3, 64, 64), np.float32))  # ...once
        assert allocations(be) == grown


@needs_trt
def test_real_engine_refuses_inputs_outside_its_profile(engines):
    with TrtBackend(engines[0]) as be:
        with pytest.raises(InputError, match="sr-build --max-tile 65"):
            be.run(np.zeros((1, 3, 65, 64), np.float32))
        with pytest.raises(InputError, match="sr-build --batch 3"):
            be.run(np.zeros((3, 3, 32, 32), np.float32))
        be.run(np.zeros((1, 3, 32, 32), np.float32))  # still usable afterwards


@needs_trt
def test_real_fp16_io_engine(engines):
    _, e16, onnx32 = engines
    x = np.random.default_rng(2).random((2, 3, 24, 40), dtype=np.float32)
    with TrtBackend(e16) as be:
        assert be._plan.input_dtype == np.float16
        assert be.descriptor() is None  # no sidecar: a foreign engine
        y = be.run(x)
        assert "float16->float16" in be.describe()
    assert y.dtype == np.float32 and y.shape == (2, 3, 48, 80)
    np.testing.assert_allclose(y, _ort(onnx32, x), atol=2e-2)
