"""Small real ONNX files and calibration images for the conformance scenarios (no torch needed).

Each model is a sub-pixel SR network in miniature: a 3x3 convolution to ``C * s * s`` channels and
a DepthToSpace, carrying sredge's metadata like an ``sr-export`` output, in float32, float16
(FP16 I/O and weights), or with Q/DQ pairs on the convolution's inputs (the TensorRT flavour).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sredge.models.descriptor import ModelDescriptor


def make_onnx(path: Path, precision: str = "fp32", hw: tuple[int, int] | None = None, channels: int = 1,
              scale: int = 2, unsupported_op: bool = False) -> Path:
    """Write a tiny SR ONNX: ``precision`` in fp32/fp16/int8 (Q/DQ); ``hw`` fixes height x width;
    ``unsupported_op`` adds an identity-like node of a custom domain no parser knows."""
    rng = np.random.default_rng(0)
    c, s = channels, scale
    elem = TensorProto.FLOAT16 if precision == "fp16" else TensorProto.FLOAT
    npt = np.float16 if precision == "fp16" else np.float32
    h, w = hw if hw else ("H", "W")
    oh, ow = (hw[0] * s, hw[1] * s) if hw else ("Hs", "Ws")
    weight = (rng.standard_normal((c * s * s, c, 3, 3)) * 0.1).astype(npt)
    inits = [numpy_helper.from_array(weight, "weight")]
    nodes = []
    conv_in, conv_w = "input", "weight"
    if precision == "int8":
        inits += [numpy_helper.from_array(np.array(1 / 127, np.float32), "x_scale"),
                  numpy_helper.from_array(np.array(0, np.int8), "x_zero"),
                  numpy_helper.from_array(np.array(0.4 / 127, np.float32), "w_scale")]
        nodes += [helper.make_node("QuantizeLinear", ["input", "x_scale", "x_zero"], ["xq"], name="q_in"),
                  helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zero"], ["xdq"], name="dq_in"),
                  helper.make_node("QuantizeLinear", ["weight", "w_scale", "x_zero"], ["wq"], name="q_w"),
                  helper.make_node("DequantizeLinear", ["wq", "w_scale", "x_zero"], ["wdq"], name="dq_w")]
        conv_in, conv_w = "xdq", "wdq"
    if unsupported_op:
        nodes.append(helper.make_node("NoSuchOp", [conv_in], ["odd"], domain="com.example", name="odd"))
        conv_in = "odd"
    nodes += [helper.make_node("Conv", [conv_in, conv_w], ["feat"], pads=[1, 1, 1, 1], name="conv"),
              helper.make_node("DepthToSpace", ["feat"], ["output"], blocksize=s, mode="CRD", name="shuffle")]
    graph = helper.make_graph(
        nodes, "tiny_sr",
        [helper.make_tensor_value_info("input", elem, ["N", c, h, w])],
        [helper.make_tensor_value_info("output", elem, ["N", c, oh, ow])],
        inits,
    )
    opsets = [helper.make_opsetid("", 18)] + ([helper.make_opsetid("com.example", 1)] if unsupported_op else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 9
    desc = ModelDescriptor(arch="espcn", scale=s, in_channels=c, out_channels=c,
                           color_space="y" if c == 1 else "rgb", value_range=1.0, pre_upsample=False)
    for k, v in desc.to_metadata().items():
        model.metadata_props.add(key=k, value=v)
    if not unsupported_op:
        onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_images(folder: Path, count: int = 4, size: tuple[int, int] = (150, 210)) -> Path:
    """Write ``count`` smooth, textured RGB PNGs (height x width ``size``) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size[0], 0:size[1]].astype(np.float32)
    for i in range(count):
        img = np.stack([(np.sin(xx / (7 + i)) + 1) * 127, (np.cos(yy / (5 + i)) + 1) * 127,
                        (xx + yy) % 256], axis=-1)
        cv2.imwrite(str(folder / f"calib_{i}.png"), img.astype(np.uint8))
    return folder
