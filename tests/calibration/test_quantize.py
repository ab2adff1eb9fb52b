"""INT8 Q/DQ on the real checkpoints: PSNR budget on Set5 and Set14, flavours, calibration methods."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from sredge.calibration.quantize import (
    Int8Options,
    activation_scales,
    calibrate,
    quantize_int8,
    quantized_nodes,
    read_float_inputs,
)
from sredge.calibration.sensitivity import Validator, candidate_layers, quantize_within_budget
from sredge.calibration.sets import model_inputs
from sredge.models.descriptor import ModelDescriptor
from tests.conftest import asset


def _dataset(name, scale):
    from sredge.benchmarks.datasets import load_dataset

    return load_dataset(asset(f"benchmarks/{name}"), scale)


@pytest.mark.assets
@pytest.mark.parametrize("name", ["fsrcnn_x2", "fsrcnn_x3", "fsrcnn_x4", "espcn_x3"])
def test_int8_cpu_within_0_1_db_on_set5_and_set14(real_model, t91_set, name):
    path, loaded = real_model(name)
    desc = loaded.descriptor
    ranges = calibrate(path, model_inputs(t91_set, desc, limit=32), Int8Options(flavour="cpu"))
    set5 = Validator(_dataset("Set5", desc.scale), desc)
    ref5 = set5.mean_db(path)
    res = quantize_within_budget(path, ranges, set5.mean_db, ref5, 0.1, desc)
    set14 = Validator(_dataset("Set14", desc.scale), desc)
    drop14 = set14.mean_db(path) - set14.mean_db(res.model)
    print(f"{name}: Set5 drop {res.drop_db:.3f} dB (plain {res.plain_drop_db}), Set14 drop {drop14:.3f} dB, "
          f"float: {res.kept_float}")
    assert res.drop_db <= 0.1 and drop14 <= 0.1
    assert ModelDescriptor.from_metadata({p.key: p.value for p in res.model.metadata_props}).precision == "int8-cpu"
    # the layers it names are float, the others really are INT8
    int8 = set(quantized_nodes(res.model))
    assert not int8 & set(res.kept_float)
    fp32 = onnx.load(str(path))
    convs = {n.name for n in fp32.graph.node if n.op_type in ("Conv", "ConvTranspose")}
    assert len(int8) + len(set(res.kept_float) & convs) == len(convs)
    if res.kept_float:  # the pass ran because plain INT8 missed the budget
        assert res.plain_drop_db > 0.1 and len(res.sensitivities) == len(candidate_layers(fp32))


@pytest.mark.assets
def test_calibration_methods_change_the_scales(real_model, t91_set):
    path, loaded = real_model("fsrcnn_x3")
    x = model_inputs(t91_set, loaded.descriptor, limit=32)
    scales = {m: activation_scales(quantize_int8(path, calibrate(path, x, Int8Options(method=m))))
              for m in ("minmax", "entropy", "percentile")}
    assert scales["minmax"].keys() == scales["entropy"].keys() == scales["percentile"].keys()
    for m in ("entropy", "percentile"):
        changed = [t for t in scales[m] if not np.isclose(scales[m][t], scales["minmax"][t], rtol=1e-3)]
        assert len(changed) >= len(scales[m]) // 2, (m, changed)
        # both clip outliers: never a wider range than the observed extremes
        assert all(scales[m][t] <= scales["minmax"][t] * 1.001 for t in scales[m])


@pytest.mark.assets
def test_trt_flavour_is_symmetric_int8_around_convolutions(real_model, t91_set):
    path, loaded = real_model("fsrcnn_x3")
    ranges = calibrate(path, model_inputs(t91_set, loaded.descriptor, limit=16), Int8Options(flavour="trt"))
    model = quantize_int8(path, ranges)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    q = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert q
    for n in q:
        zp = inits[n.input[2]]
        assert zp.dtype == np.int8 and not zp.any()
    convs = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    assert sorted(quantized_nodes(model)) == sorted(n.name for n in convs) and len(convs) == 8
    assert ModelDescriptor.from_metadata({p.key: p.value for p in model.metadata_props}).precision == "int8-trt"
    # Q/DQ on conv inputs only: no conv output is rounded to int8 before its PReLU
    quantized = {n.input[0] for n in q}
    assert not quantized & {o for n in convs for o in n.output}
    # simulated on ONNX Runtime (Q/DQ in float), it stays close; outputs rounded too, it lost 8 dB
    set5 = Validator(_dataset("Set5", 3), loaded.descriptor)
    assert set5.mean_db(path) - set5.mean_db(model) < 1.0


def _feeds(model: onnx.ModelProto, node: str) -> list[str]:
    """Op types of the nodes producing ``node``'s inputs (``<input>`` for a graph input)."""
    produced_by = {o: n.op_type for n in model.graph.node for o in n.output}
    target = next(n for n in model.graph.node if n.name == node)
    return [produced_by.get(i, "<input>") for i in target.input]


@pytest.mark.assets
def test_vdsr_output_add_reads_the_unrounded_image(real_model, t91_set):
    """VDSR adds its input image to the network's residual. ONNX Runtime's quantizer rounds the image,
    the residual and the sum to 8 bits; sredge keeps the path to the output float (the image and the
    sum unrounded, the last convolution's output still quantized so that it stays an INT8 operator).
    Kept float by the sensitivity pass, the Add also reads that convolution's output unrounded."""
    path, loaded = real_model("vdsr_x2")
    desc = loaded.descriptor
    fp32 = onnx.load(str(path))
    tail = [name for name, op in candidate_layers(fp32) if op == "Add"]
    assert len(tail) == 1 and len(candidate_layers(fp32)) == 21
    ranges = calibrate(path, model_inputs(t91_set, desc, limit=32), Int8Options(flavour="cpu"))
    set5 = Validator(_dataset("Set5", desc.scale), desc)
    ref = set5.mean_db(path)
    plain = quantize_int8(path, ranges, desc)
    assert _feeds(plain, tail[0]) == ["DequantizeLinear", "<input>"]
    produced_by = {o: n for n in plain.graph.node for o in n.output}
    assert produced_by[plain.graph.output[0].name].name == tail[0]  # the sum is not rounded
    assert len(quantized_nodes(plain)) == 20
    kept = quantize_int8(path, ranges, desc, keep_float=tail)
    assert _feeds(kept, tail[0]) == ["Conv", "<input>"]
    assert len(quantized_nodes(kept)) == 20
    plain_drop, kept_drop = ref - set5.mean_db(plain), ref - set5.mean_db(kept)
    print(f"VDSR x2 Set5: plain INT8 drop {plain_drop:.3f} dB, residual Add float {kept_drop:.3f} dB")
    assert kept_drop <= 0.1 and kept_drop <= plain_drop + 0.01
    # no dangling Q/DQ left behind, and the models still check
    for model in (plain, kept):
        onnx.checker.check_model(model)
        read = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
        assert all(any(o in read for o in n.output) for n in model.graph.node)


@pytest.mark.assets
def test_float_inputs_never_skip_a_relu_the_quantizer_folded(real_model, t91_set):
    """The CPU flavour folds each ReLU into the uint8 quantization after its convolution; a float
    convolution must then keep reading the quantized (clamped) tensor, not the pre-ReLU output."""
    path, loaded = real_model("vdsr_x2")
    ranges = calibrate(path, model_inputs(t91_set, loaded.descriptor, limit=8), Int8Options(flavour="cpu"))
    plain = quantize_int8(path, ranges)
    last_conv = [name for name, op in candidate_layers(onnx.load(str(path))) if op == "Conv"][-1]
    before = _feeds(plain, last_conv)
    assert read_float_inputs(plain, [last_conv], onnx.load(str(path))) == 0
    assert _feeds(plain, last_conv) == before


def test_quantizing_writes_nothing_beside_the_model(tmp_path):
    """ONNX Runtime's quantizer writes NAME-inferred.onnx beside the model it reads, then deletes it: a
    user's file of that name would be lost, and a read-only or shared folder would break it. sredge
    hands it a private copy, so the model's folder is left exactly as it was."""
    import shutil

    from sredge.calibration.quantize import Int8Options, calibrate, quantize_int8
    from sredge.runtime.bundled import default_model

    model = tmp_path / "m.onnx"
    shutil.copyfile(default_model(2), model)
    theirs = tmp_path / "m-inferred.onnx"
    theirs.write_bytes(b"a user's file")
    x = np.random.default_rng(0).random((4, 1, 24, 24), dtype=np.float32)
    for flavour in ("cpu", "trt"):
        quantize_int8(model, calibrate(model, x, Int8Options(flavour=flavour)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-inferred.onnx", "m.onnx"]
    assert theirs.read_bytes() == b"a user's file"


@pytest.mark.assets
def test_trt_flavour_biases_go_float_without_changing_a_bit(real_model, t91_set):
    """ONNX Runtime's quantizer dequantizes each bias from int32, which TensorRT's parser refuses ("only
    activation types allowed as input to this layer"): folded into float initializers, the output is the
    same bit for bit."""
    import onnxruntime as ort

    from sredge.calibration.quantize import _ort_quantize, dequantize_biases
    from sredge.export.engine_plan import qdq_encoding

    path, loaded = real_model("fsrcnn_x3")
    ranges = calibrate(path, model_inputs(t91_set, loaded.descriptor, limit=16), Int8Options(flavour="trt"))
    model, _ = _ort_quantize(path, ranges, ())
    assert len(qdq_encoding(model).int32) == 8
    x = np.random.default_rng(0).random((2, 1, 37, 53), dtype=np.float32)

    def run(m):
        session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, {"input": x})[0]

    y = run(model)
    assert dequantize_biases(model) == 8
    assert qdq_encoding(model).int32 == ()
    assert np.array_equal(run(model), y)
    assert sorted(quantized_nodes(model)) == sorted(n.name for n in model.graph.node
                                                    if n.op_type in ("Conv", "ConvTranspose"))
    assert dequantize_biases(model) == 0  # nothing left to fold


@pytest.mark.assets
def test_trt_flavour_scales_transposed_convolution_weights_per_input_channel(real_model, t91_set):
    """ONNX Runtime scales a ConvTranspose weight (C_in, C_out, k, k) per output channel (axis 1), which
    TensorRT's deconvolution kernels do not take: the trt flavour quantizes it again from the FP32 weight
    per input channel (axis 0), every weight within half a step of its float value, and sr-build's
    encoding check (which refuses ONNX Runtime's axis) passes; ONNX Runtime runs the file to within
    int8 noise of FP32. The cpu flavour keeps ONNX Runtime's axis."""
    import onnxruntime as ort
    from onnx import numpy_helper

    from sredge.calibration.quantize import _ort_quantize
    from sredge.export.engine_plan import qdq_encoding

    path, loaded = real_model("fsrcnn_x3")
    calib = model_inputs(t91_set, loaded.descriptor, limit=16)
    ranges = calibrate(path, calib, Int8Options(flavour="trt"))
    raw, _ = _ort_quantize(path, ranges, ())
    refused = qdq_encoding(raw)
    assert len(refused.deconv_output_axis) == 1 and not refused.tensorrt_int8
    model = quantize_int8(path, ranges)
    assert qdq_encoding(model).tensorrt_int8 and qdq_encoding(model).deconv_output_axis == ()

    fp32 = onnx.load(str(path))
    floats = {i.name: numpy_helper.to_array(i) for i in fp32.graph.initializer}
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    produced = {o: n for n in model.graph.node for o in n.output}
    (deconv,) = [n for n in model.graph.node if n.op_type == "ConvTranspose"]
    (ref,) = [n for n in fp32.graph.node if n.op_type == "ConvTranspose"]
    dq = produced[deconv.input[1]]
    assert [a.i for a in dq.attribute if a.name == "axis"] == [0]
    q, scale, zero = (inits[i] for i in dq.input)
    w = floats[ref.input[1]]
    assert q.dtype == np.int8 and np.abs(q).max() == 127 and not zero.any()
    assert scale.shape == (w.shape[0],) == (56,)
    step = scale.reshape(-1, 1, 1, 1)
    assert (np.abs(q * step - w) <= step / 2 * (1 + 1e-6)).all()
    assert deconv.input[2] in inits and inits[deconv.input[2]].dtype == np.float32

    x = calib[:4]
    run = {name: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0] for name, m in (("fp32", fp32), ("int8", model))}
    assert 0 < np.abs(run["int8"] - run["fp32"]).mean() < 0.01

    cpu = quantize_int8(path, calibrate(path, calib, Int8Options(flavour="cpu")))
    cpu_dq = {o: n for n in cpu.graph.node for o in n.output}
    (cpu_deconv,) = [n for n in cpu.graph.node if n.op_type == "ConvTranspose"]
    assert [a.i for a in cpu_dq[cpu_deconv.input[1]].attribute if a.name == "axis"] == [1]


@pytest.mark.assets
def test_seven_bit_trt_weights_stay_within_64_and_tensorrt_encoded(real_model, t91_set):
    """``weight_bits=7`` narrows the trt flavour's weights to |q| <= 64, the ConvTranspose weight TensorRT
    takes per input channel too: OpenVINO's wide-weight check (which warns on CPUs without VNNI) passes, the
    file is still what TensorRT's parser takes, and ONNX Runtime runs it to within int8 noise of FP32.
    The cpu flavour takes no 8-bit weights."""
    import onnxruntime as ort
    from onnx import numpy_helper

    from sredge.errors import InputError
    from sredge.export.engine_plan import qdq_encoding
    from sredge.runtime.backends.openvino import wide_int8_weights

    path, loaded = real_model("fsrcnn_x2")
    calib = model_inputs(t91_set, loaded.descriptor, limit=16)
    models = {bits: quantize_int8(path, calibrate(path, calib, Int8Options(flavour="trt", weight_bits=bits)))
              for bits in (8, 7)}
    for bits, model in models.items():
        inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        weights = [inits[n.input[0]] for n in model.graph.node
                   if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].ndim == 4]
        assert len(weights) == 8 and all(w.dtype == np.int8 for w in weights)
        assert {int(np.abs(w.astype(int)).max()) for w in weights} == {127 if bits == 8 else 64}, bits
        assert wide_int8_weights(model) == (bits == 8) and qdq_encoding(model).tensorrt_int8
    fp32 = onnx.load(str(path))
    x = calib[:4]
    out = {k: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0] for k, m in (("fp32", fp32), ("7", models[7]))}
    assert 0 < np.abs(out["7"] - out["fp32"]).mean() < 0.01
    with pytest.raises(InputError, match="cpu flavour's weights are 7-bit"):
        Int8Options(flavour="cpu", weight_bits=8)
    with pytest.raises(InputError, match="7 or 8"):
        Int8Options(flavour="trt", weight_bits=6)


def test_the_bundled_int8_files_are_tensorrt_encoded():
    """The shipped INT8 twins (trt flavour) hold what TensorRT's ONNX parser takes: int8 with zero point 0,
    biases in float."""
    from sredge.export.engine_plan import qdq_encoding
    from sredge.runtime.bundled import default_model

    for scale in (2, 3, 4):
        int8 = default_model(scale).with_name(f"sredge_x{scale}.int8.onnx")
        model = onnx.load(str(int8))
        inits = {i.name: i.data_type for i in model.graph.initializer}
        stored = {inits[n.input[0]] for n in model.graph.node
                  if n.op_type == "DequantizeLinear" and n.input[0] in inits}
        assert stored == {onnx.TensorProto.INT8} and qdq_encoding(model).tensorrt_int8, int8


def test_calibrate_refuses_inputs_it_would_misread(tmp_path):
    """The library audit: 8-bit crops or floats in [0, 255] calibrated ranges 255 times too wide (a useless INT8
    model, no error); RGB crops for a luma-only model and a missing file were ONNX Runtime's / onnx's tracebacks."""
    from sredge.errors import InputError
    from sredge.runtime.bundled import default_model

    model = default_model(2)  # luma-only, value range 1
    x = np.random.default_rng(0).random((4, 1, 16, 16), dtype=np.float32)
    with pytest.raises(InputError, match="no such ONNX file"):
        calibrate(tmp_path / "missing.onnx", x)
    with pytest.raises(InputError, match=r"\(N, 1, H, W\) floats in \[0, 1\], not uint8 .*model_inputs"):
        calibrate(model, (x * 255).astype(np.uint8))
    with pytest.raises(InputError, match=r"not float32 \(4, 3, 16, 16\)"):
        calibrate(model, np.repeat(x, 3, axis=1))
    with pytest.raises(InputError, match="go up to 2"):
        calibrate(model, x * 255)
    assert calibrate(model, x).options.flavour == "cpu"


def test_save_model_names_an_output_it_cannot_write(tmp_path):
    """The library audit: save_model into a missing folder was a FileNotFoundError traceback."""
    from sredge.calibration.quantize import save_model
    from sredge.errors import InputError
    from sredge.runtime.bundled import default_model

    with pytest.raises(InputError, match="does not exist"):
        save_model(onnx.load(str(default_model(2))), tmp_path / "missing" / "m.int8.onnx")
