"""How many activation bits a Q/DQ file needs: its PSNR drop with every activation quantizer widened.

    python benchmarks/int8_bit_depth.py FP32.onnx INT8.onnx [--bits 8,9,10,12] [--dataset DIR ...]

Each activation QuantizeLinear/DequantizeLinear pair of the INT8 file is replaced by float fake
quantization (divide, round half to even, clip, multiply) with ``b`` bits over the same real range: the
scale divided by ``2**(b - 8)``, the integer range and zero point multiplied by it. Weights stay as the
file has them. With ``b = 8`` the rewritten graph computes what the file computes, so its row
reproduces the file's own drop; wider rows show how much of the drop each further bit would take
back. Drops are FP32 minus INT8 Y-PSNR (ONNX Runtime, CPU, whole images), as sr-bench measures them.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnx
from _family import ASSETS
from onnx import helper, numpy_helper

from sredge.benchmarks.datasets import load_dataset
from sredge.benchmarks.quality import evaluate_y_psnr
from sredge.models.onnx_file import read_descriptor
from sredge.runtime.backends.ort import OrtBackend

_RANGES = {onnx.TensorProto.INT8: (-128, 127), onnx.TensorProto.UINT8: (0, 255)}


def widen_activations(model: onnx.ModelProto, bits: int) -> tuple[onnx.ModelProto, int]:
    """A copy of a Q/DQ model with each activation quantizer emulated in float at ``bits`` bits.

    Args:
        model: A Q/DQ ONNX model with per-tensor int8 or uint8 activation quantizers (scalar scale
            and zero point initializers; weights quantized as constants are left alone).
        bits: Bits per activation, >= 2 (8 reproduces the model).

    Returns:
        (the rewritten model, how many quantizers were replaced).
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = {i.name: i for i in graph.initializer}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    factor = 2.0 ** (bits - 8)
    replaced: dict[int, list[onnx.NodeProto]] = {}
    count = 0
    for q in graph.node:
        if q.op_type != "QuantizeLinear" or q.input[0] in inits:
            continue
        dqs = readers.get(q.output[0], [])
        if not dqs or any(d.op_type != "DequantizeLinear" for d in dqs):
            continue
        scale = float(numpy_helper.to_array(inits[q.input[1]]))
        zp_init = inits.get(q.input[2]) if len(q.input) > 2 and q.input[2] else None
        dtype = zp_init.data_type if zp_init is not None else onnx.TensorProto.UINT8
        lo, hi = _RANGES[dtype]
        zp = float(numpy_helper.to_array(zp_init)) if zp_init is not None else 0.0
        k = f"sredge_widen{count}"
        consts = {"s": scale / factor, "zp": zp * factor, "lo": lo * factor, "hi": (hi + 1) * factor - 1}
        graph.initializer.extend(numpy_helper.from_array(np.array(v, np.float32), f"{k}_{n}")
                                 for n, v in consts.items())
        chain = [
            helper.make_node("Div", [q.input[0], f"{k}_s"], [f"{k}_a"]),
            helper.make_node("Round", [f"{k}_a"], [f"{k}_r"]),
            helper.make_node("Add", [f"{k}_r", f"{k}_zp"], [f"{k}_z"]),
            helper.make_node("Clip", [f"{k}_z", f"{k}_lo", f"{k}_hi"], [f"{k}_c"]),
            helper.make_node("Sub", [f"{k}_c", f"{k}_zp"], [f"{k}_d"]),
            helper.make_node("Mul", [f"{k}_d", f"{k}_s"], [f"{k}_y"]),
        ]
        replaced[id(q)] = chain
        for d in dqs:
            replaced[id(d)] = [helper.make_node("Identity", [f"{k}_y"], [d.output[0]])]
        count += 1
    nodes = [m for n in graph.node for m in replaced.get(id(n), [n])]
    del graph.node[:]
    graph.node.extend(nodes)  # each chain sits where its QuantizeLinear was: still topological
    return out, count


def mean_db(model: onnx.ModelProto | Path, dataset, desc) -> float:
    """Mean Y-PSNR (dB) of a model (a file, or one in memory, saved to a temporary file) on a dataset."""
    if isinstance(model, onnx.ModelProto):
        with tempfile.TemporaryDirectory() as tmp:
            onnx.save(model, Path(tmp) / "m.onnx")
            return mean_db(Path(tmp) / "m.onnx", dataset, desc)
    with OrtBackend(Path(model)) as backend:
        return float(np.mean(list(evaluate_y_psnr(backend.run, desc, dataset).values())))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fp32", type=Path)
    ap.add_argument("int8", type=Path)
    ap.add_argument("--bits", default="8,9,10,12", help="activation bit depths, comma-separated (default 8,9,10,12)")
    ap.add_argument("--dataset", type=Path, nargs="+",
                    default=[ASSETS / "benchmarks" / "Set5", ASSETS / "benchmarks" / "Set14"],
                    help="benchmark folders (default: Set5 and Set14 of the shared assets, SREDGE_ASSETS)")
    args = ap.parse_args()
    desc = read_descriptor(args.fp32)
    sets = [load_dataset(d, desc.scale) for d in args.dataset]
    ref = [mean_db(args.fp32, s, desc) for s in sets]
    qdq = onnx.load(str(args.int8))
    print("bits  " + "  ".join(f"{d.name} drop dB" for d in args.dataset))
    for bits in (int(b) for b in args.bits.split(",")):
        model, count = widen_activations(qdq, bits)
        if not count:
            raise SystemExit(f"{args.int8}: no activation QuantizeLinear/DequantizeLinear pair to widen")
        drops = [r - mean_db(model, s, desc) for r, s in zip(ref, sets)]
        print(f"{bits:4d}  " + "  ".join(f"{d:{len(n.name) + 8}.3f}" for d, n in zip(drops, args.dataset)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
