"""A stand-in for the ``tensorrt`` module, for the GPU check (``tools/gpu_check.py``, part 3) only.

It is not TensorRT and builds nothing. Its "engine" file is a JSON note naming a checkpoint; its
execution context runs that network with PyTorch on CUDA, on the stream handle and at the device
addresses that sredge's :class:`~sredge.runtime.backends.trt.TrtBackend` passes to
``execute_async_v3``. So everything of the TensorRT path except TensorRT itself runs for real on the GPU:
cuda-python's runtime calls, page-locked and device buffers, the three streams and their events, the
double-buffered overlap, shape changes between tiles, and the output read back.

The API it offers is the name-based subset ``TrtBackend`` uses (TensorRT 10/11): ``Logger``,
``Runtime.deserialize_cuda_engine``, ``ICudaEngine.num_io_tensors`` / ``get_tensor_*`` /
``create_execution_context`` and ``IExecutionContext.set_input_shape`` / ``get_tensor_shape`` /
``set_tensor_address`` / ``execute_async_v3``. ``delay_cycles`` in the note makes every execution
start with a GPU busy-wait (``torch.cuda._sleep``), so a copy that does not wait for the engine reads
stale memory: the check's ordering test.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Any

__version__ = "0.0.0-standin"


class Logger:
    WARNING = 2

    def __init__(self, level: int = WARNING):
        self.level = level


class TensorIOMode(enum.Enum):
    INPUT = 1
    OUTPUT = 2


class DataType(enum.Enum):
    FLOAT = 0
    HALF = 1


class TensorFormat(enum.Enum):
    LINEAR = 0


def write_engine(path: Path, checkpoint: Path, load: dict, channels: tuple[int, int], scale: int,
                 profile: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]], io: str = "FLOAT",
                 delay_cycles: int = 0) -> Path:
    """Write a stand-in engine note.

    Args:
        checkpoint: The network (anything :func:`sredge.models.loader.load_model` reads), with ``load``
            its keyword arguments.
        channels: (input, output) channels.
        profile: (min, opt, max) NCHW input shapes, like an optimization profile.
        io: ``"FLOAT"`` or ``"HALF"``: the engine's input/output type (HALF runs the network in float16).
        delay_cycles: GPU clock cycles of busy-wait before each execution.
    """
    note = {"checkpoint": str(checkpoint), "load": load, "channels": list(channels), "scale": scale,
            "profile": [list(s) for s in profile], "io": io, "delay_cycles": delay_cycles}
    path.write_text(json.dumps(note))
    return path


class _Engine:
    def __init__(self, note: dict):
        import torch

        from sredge.models.loader import load_model

        self.note = note
        self.io = DataType[note["io"]]
        self.torch_dtype = torch.float16 if self.io is DataType.HALF else torch.float32
        self.module = load_model(note["checkpoint"], **note["load"]).module.to("cuda", self.torch_dtype).eval()
        self.num_io_tensors = 2

    def get_tensor_name(self, index: int) -> str:
        return ("input", "output")[index]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return TensorIOMode.INPUT if name == "input" else TensorIOMode.OUTPUT

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        c_in, c_out = self.note["channels"]
        return (-1, c_in if name == "input" else c_out, -1, -1)

    def get_tensor_dtype(self, name: str) -> DataType:
        return self.io

    def get_tensor_format(self, name: str) -> TensorFormat:
        return TensorFormat.LINEAR

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[tuple[int, ...]]:
        if name != "input" or profile_index != 0:
            raise ValueError(f"no profile {profile_index} for {name!r}")
        return [tuple(s) for s in self.note["profile"]]

    def create_execution_context(self) -> _Context:
        return _Context(self)


class _Context:
    def __init__(self, engine: _Engine):
        self.engine = engine
        self.in_shape: tuple[int, ...] | None = None
        self.addresses: dict[str, int] = {}
        self.executions = 0

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        lo, _, hi = self.engine.note["profile"]
        if name != "input" or len(shape) != 4 or any(not a <= d <= b for a, d, b in zip(lo, shape, hi)):
            return False
        self.in_shape = tuple(int(d) for d in shape)
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        if self.in_shape is None:
            return self.engine.get_tensor_shape(name)
        if name == "input":
            return self.in_shape
        n, _, h, w = self.in_shape
        s = self.engine.note["scale"]
        return (n, self.engine.note["channels"][1], h * s, w * s)

    def set_tensor_address(self, name: str, address: int) -> bool:
        self.addresses[name] = int(address)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        import torch

        if self.in_shape is None or set(self.addresses) != {"input", "output"}:
            return False
        e = self.engine
        with torch.cuda.stream(torch.cuda.ExternalStream(int(stream_handle))), torch.inference_mode():
            if e.note["delay_cycles"]:
                torch.cuda._sleep(int(e.note["delay_cycles"]))
            x = _device_tensor(self.addresses["input"], self.in_shape, e.torch_dtype)
            out = _device_tensor(self.addresses["output"], self.get_tensor_shape("output"), e.torch_dtype)
            out.copy_(e.module(x))
        self.executions += 1
        return True


def _device_tensor(address: int, shape: tuple[int, ...], dtype: Any):
    """A torch view of device memory the caller owns (no copy), through the CUDA array interface."""
    import torch

    typestr = {torch.float32: "<f4", torch.float16: "<f2"}[dtype]
    return torch.as_tensor(_CudaArray({"shape": tuple(shape), "typestr": typestr, "data": (address, False),
                                       "version": 2, "strides": None}), device="cuda")


class _CudaArray:
    def __init__(self, interface: dict):
        self.__cuda_array_interface__ = interface


class Runtime:
    def __init__(self, logger: Logger):
        self.logger = logger

    def deserialize_cuda_engine(self, data: bytes) -> _Engine | None:
        try:
            note = json.loads(data)
        except ValueError:
            return None
        return _Engine(note)
