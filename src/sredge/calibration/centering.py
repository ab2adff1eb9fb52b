"""Centre the image before the first convolutions: an exact rewrite that gives symmetric INT8 one more bit.

Symmetric int8 (the trt flavour: zero point 0, what TensorRT and OpenVINO run natively) spends
half of its 255 levels on negative values. An image in [0, 1] never has any, so the first
convolution would read it in steps of 1/127, twice as coarse as the picture's own 8 bits. Reading
``x - c`` instead, with ``c`` the middle of the value range, uses every level. The convolution
stays exact because

* its zero padding becomes an explicit ``Pad`` with the value ``-c`` (zero-padded ``x`` minus ``c``
  everywhere), and
* its bias grows by ``c x`` the sum of each output channel's weights.

Only convolutions that read the graph input directly (ungrouped, explicit padding) are changed;
anything else reading the input (a nearest-neighbour skip, a resize) still reads it unchanged.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

PREFIX = "sredge_center"
"""Names of the nodes and initializers the rewrite adds."""


def center_input(model: onnx.ModelProto, offset: float) -> tuple[onnx.ModelProto, int]:
    """The model with ``offset`` subtracted before each convolution that reads the graph input (a copy).

    Args:
        model: An FP32 model, one (N, C, H, W) input, weights and biases as initializers.
        offset: What to subtract: the middle of the input's value range (0.5 for [0, 1], 127.5 for
            [0, 255]).

    Returns:
        (the rewritten model, how many convolutions changed). With 0 the model is an unchanged copy
        (no convolution reads the input directly, or the opset predates ``Pad`` with a value input).
        Its outputs equal the original's up to float rounding.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    opset = next((o.version for o in out.opset_import if o.domain in ("", "ai.onnx")), 0)
    source = graph.input[0].name
    inits = {i.name: i for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv" and n.input and n.input[0] == source
             and _centrable(n, inits)]
    if opset < 11 or not convs:
        return out, 0
    graph.initializer.extend([numpy_helper.from_array(np.array(offset, np.float32), f"{PREFIX}_offset"),
                              numpy_helper.from_array(np.array(-offset, np.float32), f"{PREFIX}_fill")])
    centred = f"{PREFIX}_x"
    added = [helper.make_node("Sub", [source, f"{PREFIX}_offset"], [centred], name=f"{PREFIX}_sub")]
    for k, conv in enumerate(convs):
        attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        weight = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float64)
        shift = offset * weight.reshape(weight.shape[0], -1).sum(axis=1)
        if len(conv.input) > 2 and conv.input[2]:
            bias = numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64) + shift
            inits[conv.input[2]].CopyFrom(numpy_helper.from_array(bias.astype(np.float32), conv.input[2]))
        else:
            name = f"{PREFIX}_bias{k}"
            graph.initializer.append(numpy_helper.from_array(shift.astype(np.float32), name))
            conv.input.append(name)
        reads = centred
        if any(pads):
            graph.initializer.append(numpy_helper.from_array(
                np.array([0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]], np.int64), f"{PREFIX}_pads{k}"))
            reads = f"{PREFIX}_padded{k}"
            added.append(helper.make_node("Pad", [centred, f"{PREFIX}_pads{k}", f"{PREFIX}_fill"], [reads],
                                          name=f"{PREFIX}_pad{k}", mode="constant"))
        conv.input[0] = reads
        for a in [a for a in conv.attribute if a.name == "pads"]:
            conv.attribute.remove(a)
    nodes = added + list(graph.node)  # the new nodes read only the input: first is topological order
    del graph.node[:]
    graph.node.extend(nodes)
    return out, len(convs)


def _centrable(conv: onnx.NodeProto, inits: dict) -> bool:
    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    return (attrs.get("group", 1) == 1 and auto_pad in (b"NOTSET", "NOTSET") and len(attrs.get("pads", [0] * 4)) == 4
            and conv.input[1] in inits and (len(conv.input) < 3 or not conv.input[2] or conv.input[2] in inits))
