"""The memory estimate reads a model's activations from its ONNX graph: RFDN and BSRN keep their distilled
features alive for a final concatenation, 3-4x the 64 channels the estimate assumed, so ``--tile 0`` of a 4K
image passed the check on a 21 GiB machine (16.5 GiB estimated, about 48 needed) and would meet the OOM killer."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sredge.models.descriptor import ModelDescriptor
from sredge.models.onnx_file import write_descriptor
from sredge.runtime.memory import DEFAULT_FEATURE_CHANNELS, estimate, graph_feature_channels, model_feature_channels
from sredge.runtime.runner import LoadedRuntime, RunOptions
from sredge.runtime.tiling import TileConfig

_DESC = ModelDescriptor("rfdn", 4, 3, 3, "rgb", 1.0, False)


def _distilling_model(path: Path, branches: int = 6, width: int = 64) -> Path:
    """A real x4 ONNX shaped like RFDN's blocks: a chain of 3x3 convolutions whose every output is kept for one
    concatenation, a 1x1 fusion, then DepthToSpace."""
    rng = np.random.default_rng(0)
    nodes, inits, kept, cur, c_in = [], [], [], "input", 3
    for i in range(branches):
        w = numpy_helper.from_array((rng.standard_normal((width, c_in, 3, 3)) * 0.05).astype(np.float32), f"w{i}")
        inits.append(w)
        nodes.append(helper.make_node("Conv", [cur, f"w{i}"], [f"f{i}"], pads=[1, 1, 1, 1]))
        cur, c_in = f"f{i}", width
        kept.append(cur)
    nodes.append(helper.make_node("Concat", kept, ["cat"], axis=1))
    inits.append(numpy_helper.from_array(
        (rng.standard_normal((48, width * branches, 1, 1)) * 0.01).astype(np.float32), "fuse"))
    nodes.append(helper.make_node("Conv", ["cat", "fuse"], ["fused"]))
    nodes.append(helper.make_node("DepthToSpace", ["fused"], ["output"], blocksize=4, mode="CRD"))
    graph = helper.make_graph(
        nodes, "distil", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, None, None])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    write_descriptor(model, _DESC)
    onnx.save(model, path)
    return path


_MEASURE = """
import os, resource, sys, numpy as np, onnxruntime as ort
so = ort.SessionOptions(); so.intra_op_num_threads = 1
s = ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
s.run(None, {"input": np.zeros((1, 3, 8, 8), np.float32)})  # code, thread pool and session buffers in place
x = np.random.default_rng(0).random((1, 3, 360, 640), np.float32)
with open("/proc/self/statm") as f:
    resident = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
s.run(None, {"input": x})
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - resident)
"""


def _ort_peak_bytes(model: Path) -> int:
    """What one whole-frame 360x640 run adds to the resident memory of a child process at its peak (3 GiB cap).

    Large blocks are mapped and unmapped one by one (``MALLOC_MMAP_THRESHOLD_``), so memory that session creation
    freed but kept resident cannot hide part of the run's (a CI run measured 124 MB that way, for about 700)."""
    import os

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(1 << 17))
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(model)], capture_output=True, text=True, check=True,
                         preexec_fn=cap, timeout=60, env=env)
    return int(out.stdout.split()[-1])


def test_the_estimate_covers_what_onnx_runtime_takes_for_a_distilling_network(tmp_path):
    model = _distilling_model(tmp_path / "distil_x4.onnx")
    channels = model_feature_channels(model, 4, 3)
    assert channels > DEFAULT_FEATURE_CHANNELS
    peak = _ort_peak_bytes(model)
    assert estimate(360, 640, _DESC, TileConfig(), feature_channels=channels).tile >= peak
    assert estimate(360, 640, _DESC, TileConfig()).tile < peak  # the 64-channel model fell short


def test_the_runtime_plans_with_the_graphs_channels(tmp_path):
    model = _distilling_model(tmp_path / "distil_x4.onnx")
    with LoadedRuntime(model, RunOptions()) as rt:
        assert rt.feature_channels == model_feature_channels(model, 4, 3)
        assert rt.upscaler(360, 640).feature_channels == rt.feature_channels


def test_a_plain_network_keeps_the_default():
    """Two 64-channel convolutions in a row: nothing more than the 64 channels assumed."""
    w = numpy_helper.from_array(np.zeros((64, 64, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["a"], pads=[1, 1, 1, 1]),
         helper.make_node("Conv", ["a", "w"], ["output"], pads=[1, 1, 1, 1])], "plain",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 64, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 64, None, None])], [w])
    assert graph_feature_channels(helper.make_model(graph), 1, 64) == DEFAULT_FEATURE_CHANNELS
