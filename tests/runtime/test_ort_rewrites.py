"""ONNX Runtime's CPU sessions run PReLU as depthwise convolutions where that is faster
(``sredge.runtime.ort_rewrites``): real models, real ONNX Runtime sessions, parity with the graph as stored.
Its speed is measured by ``benchmarks/bench_ort_rewrites.py`` (docs/performance.md), not here."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from sredge.models.onnx_file import read_descriptor
from sredge.runtime.backends.base import BackendOptions
from sredge.runtime.backends.ort import OrtBackend
from sredge.runtime.bundled import bundled_models
from sredge.runtime.ort_rewrites import eligible_prelus, prelu_as_depthwise
from sredge.runtime.timing import sample_input


def _psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak ** 2 / mse)


def _both(path, size=(96, 112)) -> tuple[np.ndarray, np.ndarray, int]:
    """(rewritten output, stored graph's output, PReLUs rewritten) on a real photo, CPU sessions."""
    x = sample_input(read_descriptor(path), *size)
    cpu = BackendOptions(device="cpu")
    with OrtBackend(path, cpu) as a, OrtBackend(path, cpu, rewrites=False) as b:
        assert b.rewritten == 0
        return a.run(x), b.run(x), a.rewritten


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_the_bundled_networks_run_rewritten_and_match_their_stored_graph(scale):
    path = bundled_models()[scale]
    got, want, n = _both(path)
    prelus = sum(node.op_type == "PRelu" for node in onnx.load(str(path)).graph.node)
    assert n == prelus > 0  # 16 channels each: every one
    assert _psnr(got, want, read_descriptor(path).value_range) > 130


def test_a_64_channel_real_world_network_is_rewritten_too(exported):
    got, want, n = _both(exported("anime_x4"), size=(40, 48))
    assert n == 17 and _psnr(got, want, 1.0) > 130


def test_prelus_that_do_not_fill_whole_blocks_and_int8_files_are_left_alone(exported):
    """FSRCNN's PReLUs have 56 and 12 channels (it ran 7-10 % slower rewritten); an INT8 file's PReLUs sit between
    Q/DQ pairs."""
    fsrcnn = exported("fsrcnn_x2")
    got, want, n = _both(fsrcnn)
    assert n == 0 and np.array_equal(got, want)
    int8 = bundled_models()[2].with_name("sredge_x2.int8.onnx")
    assert eligible_prelus(onnx.load(str(int8))) == []


def test_the_rewrite_keeps_the_graph_valid_and_drops_only_the_slopes_it_used():
    model = onnx.load(str(bundled_models()[3]))
    before = {t.name for t in model.graph.initializer}
    assert prelu_as_depthwise(model) == 10
    onnx.checker.check_model(model, full_check=True)
    after = {t.name for t in model.graph.initializer}
    gone = before - after
    assert gone and all(not any(name in n.input for n in model.graph.node) for name in gone)
    assert not any(n.op_type == "PRelu" for n in model.graph.node)
    assert prelu_as_depthwise(model) == 0  # nothing left to rewrite


@pytest.mark.parametrize("slope_shape,rewritten", [((1, 16, 1, 1), 1), ((16, 1, 1), 1), ((16,), 0), ((1,), 0),
                                                   ((1, 8, 1, 1), 0)])
def test_only_per_channel_slopes_of_whole_blocks_are_rewritten(tmp_path, slope_shape, rewritten):
    """A (16,) slope broadcasts along the last axis (W), not the channels: it must run as stored."""
    from onnx import TensorProto, helper, numpy_helper

    channels = 8 if slope_shape == (1, 8, 1, 1) else 16
    a = np.random.default_rng(0).uniform(-0.5, 1.5, slope_shape).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("PRelu", ["input", "a"], ["output"], name="p")], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, channels, 8, 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, channels, 8, 16])],
        [numpy_helper.from_array(a, "a")])
    path = tmp_path / "p.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    x = np.random.default_rng(1).standard_normal((1, channels, 8, 16)).astype(np.float32)
    cpu = BackendOptions(device="cpu")
    with OrtBackend(path, cpu) as got, OrtBackend(path, cpu, rewrites=False) as want:
        assert got.rewritten == rewritten
        np.testing.assert_allclose(got.run(x), want.run(x), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(want.run(x), np.where(x >= 0, x, x * a), rtol=1e-6)


def _prelu_graph(case: str):
    """A small float graph around one 16-channel PReLU, built the way the ORT audit found troublesome."""
    from onnx import TensorProto, helper, numpy_helper

    a = np.random.default_rng(0).uniform(-0.5, 1.5, (1, 16, 1, 1)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((16, 16, 3, 3)).astype(np.float32) * 0.1
    inits = [numpy_helper.from_array(a, "a"), numpy_helper.from_array(w, "w")]
    image = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 16, 8, 8])
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 16, 8, 8])
    conv = helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1], name="conv")
    prelu = helper.make_node("PRelu", ["c", "a"], ["output" if case != "rank-unknown" else "p"], name="p")
    nodes, inputs = [conv, prelu], [image]
    if case == "initializers-as-inputs":  # old exporters' keep_initializers_as_inputs
        inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(t.dims)) for n, t in
                   (("a", inits[0]), ("w", inits[1]))]
    if case == "name-clash":  # a tensor already named as the rewrite would name its first
        nodes = [helper.make_node("Identity", ["input"], ["p__dw_neg"], name="id"),
                 helper.make_node("Conv", ["p__dw_neg", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"), prelu]
    if case == "rank-unknown":  # no value_info: the rank is inferred before deciding
        nodes.append(helper.make_node("Identity", ["p"], ["output"], name="id"))
    if case == "slope-read-in-a-subgraph":  # an If branch reads the slope from the outer graph
        branch = helper.make_graph([helper.make_node("Add", ["output", "a"], ["b"], name="add")], "then", [],
                                   [helper.make_tensor_value_info("b", TensorProto.FLOAT, None)])
        inits.append(numpy_helper.from_array(np.array(True), "cond"))
        nodes.append(helper.make_node("If", ["cond"], ["final"], then_branch=branch, else_branch=branch, name="if"))
        out = helper.make_tensor_value_info("final", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", inputs, [out], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("case", ["initializers-as-inputs", "name-clash", "rank-unknown", "slope-read-in-a-subgraph"])
def test_graphs_the_audit_built_run_rewritten_and_match(tmp_path, case):
    """The ORT audit: initializers listed as graph inputs made a rewritten model 'have 2 inputs'; a name clash or a
    slope read by a subgraph made the rewritten graph invalid; an unrecorded rank was taken for 4."""
    path = tmp_path / f"{case}.onnx"
    onnx.save(_prelu_graph(case), str(path))
    x = np.random.default_rng(2).standard_normal((1, 16, 8, 8)).astype(np.float32)
    cpu = BackendOptions(device="cpu")
    with OrtBackend(path, cpu) as got, OrtBackend(path, cpu, rewrites=False) as want:
        assert got.rewritten == 1 and [i.name for i in got._session().get_inputs()] == ["input"]
        np.testing.assert_allclose(got.run(x), want.run(x), rtol=1e-5, atol=1e-5)
