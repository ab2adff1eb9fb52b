"""A simulated CUDA device behind the REAL cuda-python runtime module's signatures.

:class:`SimCudaModule` stands in for ``cuda.bindings.runtime`` / ``cuda.cudart``: attribute
look-ups go to the real module (so enums such as ``cudaMemcpyKind`` and types such as
``cudaStream_t`` are real), and every function call is first bound to the real function's
signature (arity, keyword names) and its annotated argument types, then executed by a simulated
device that follows the CUDA runtime's documented semantics closely enough to catch ordering bugs:

* device memory is a set of allocations at fake addresses; a copy must read and write inside
  allocations of the right side (host or device) for its ``cudaMemcpyKind`` (swapped arguments
  fail);
* ``cudaMallocHost`` returns real page-locked-in-name host memory, tracked as pinned;
* work queued on a stream (async copies, engine executions, event records, waits) runs only when
  something synchronizes it; an async copy to or from *pinned* memory reads or writes the host at
  that moment (so a host buffer reused too early is caught), while one from *pageable* memory is
  staged at once (host to device) or done synchronously (device to host), as CUDA does.

It computes nothing real: an engine execution is whatever ``simtrt.py`` enqueues.
"""

from __future__ import annotations

import ctypes
import inspect
import itertools
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEVICE_BASE = 0x7E00_0000_0000


@dataclass
class Op:
    stream: int
    kind: str
    run: Callable[[], None] | None = None
    event: int | None = None
    waits_for: tuple[int, int] | None = None
    """(event handle, record sequence) a wait op depends on."""
    seq: int = 0


@dataclass
class CopyRecord:
    kind: str
    count: int
    host_pinned: bool
    asynchronous: bool


@dataclass
class SimDevice:
    """The simulated GPU: memory, streams, events and the log the checks read."""

    name: str = "NVIDIA Simulated GPU"
    major: int = 8
    minor: int = 7
    count: int = 1
    allocations: dict[int, bytearray] = field(default_factory=dict)
    pinned: dict[int, Any] = field(default_factory=dict)
    """host address -> ctypes buffer (kept alive here)."""
    queues: dict[int, list[Op]] = field(default_factory=dict)
    events: dict[int, tuple[int, int] | None] = field(default_factory=dict)
    """event -> (stream, seq of its record op) of its last record, None if never recorded."""
    done_records: set[tuple[int, int]] = field(default_factory=set)
    copies: list[CopyRecord] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    writes: dict[int, int] = field(default_factory=dict)
    """device allocation base -> bytes written by the last copy into it."""
    _next_dev: int = DEVICE_BASE
    _seq: Any = field(default_factory=lambda: itertools.count(1))
    _handles: Any = field(default_factory=lambda: itertools.count(0x1000))

    # -- memory -------------------------------------------------------------

    def malloc(self, size: int) -> int:
        ptr = self._next_dev
        self._next_dev += (size + 0xFFFF) // 0x10000 * 0x10000 + 0x10000
        self.allocations[ptr] = bytearray(size)
        return ptr

    def device_span(self, ptr: int, count: int, what: str) -> tuple[bytearray, int]:
        for base, buf in self.allocations.items():
            if base <= ptr < base + len(buf):
                if ptr + count > base + len(buf):
                    self.fail(f"{what}: {count} bytes at device offset {ptr - base} overrun a {len(buf)}-byte "
                              "allocation")
                return buf, ptr - base
        self.fail(f"{what}: {ptr:#x} is not device memory from cudaMalloc")
        raise AssertionError

    def is_device(self, ptr: int) -> bool:
        return any(base <= ptr < base + len(buf) for base, buf in self.allocations.items())

    def pinned_span(self, ptr: int, count: int) -> bool:
        for base, buf in self.pinned.items():
            if base <= ptr and ptr + count <= base + ctypes.sizeof(buf):
                return True
        return False

    def fail(self, text: str) -> None:
        self.violations.append(text)
        raise AssertionError(text)

    # -- streams ------------------------------------------------------------

    def new_handle(self) -> int:
        return next(self._handles)

    def enqueue(self, stream: int, op: Op) -> None:
        if stream not in self.queues:
            self.fail(f"work queued on {stream:#x}, which is not a stream from cudaStreamCreate")
        op.stream, op.seq = stream, next(self._seq)
        self.queues[stream].append(op)

    def drain(self, stream: int, upto: int | None = None) -> None:
        """Run ``stream``'s queued work in order (up to and including seq ``upto``)."""
        queue = self.queues.get(stream, [])
        while queue and (upto is None or queue[0].seq <= upto):
            op = queue.pop(0)
            if op.waits_for is not None:
                ev_stream, ev_seq = op.waits_for
                if (ev_stream, ev_seq) not in self.done_records:
                    self.drain(ev_stream, ev_seq)
            if op.run is not None:
                op.run()
            if op.kind == "record":
                self.done_records.add((stream, op.seq))

    def drain_all(self) -> None:
        for stream in list(self.queues):
            self.drain(stream)


def _ok(module: Any) -> Any:
    return module.cudaError_t.cudaSuccess


class SimCudaModule(types.ModuleType):
    """The real cuda-python runtime module's names, with calls checked and simulated."""

    def __init__(self, real: Any, device: SimDevice, name: str):
        super().__init__(name)
        self.__dict__["_real"] = real
        self.__dict__["_dev"] = device
        self.__dict__["used"] = set()

    def __getattr__(self, name: str) -> Any:
        real, dev = self.__dict__["_real"], self.__dict__["_dev"]
        attr = getattr(real, name)  # AttributeError for a name this cuda-python lacks, as the real module
        if isinstance(attr, type) or not callable(attr):
            return attr
        sim = getattr(self, f"_sim_{name}", None)
        try:
            sig = inspect.signature(attr)
        except (TypeError, ValueError):
            sig = None

        def call(*args: Any, **kwargs: Any) -> Any:
            if sig is not None:
                try:
                    bound = sig.bind(*args, **kwargs)
                except TypeError as exc:
                    dev.violations.append(f"{name}{sig}: {exc}")
                    raise
                for pname, value in bound.arguments.items():
                    ann = sig.parameters[pname].annotation
                    if isinstance(ann, str) and hasattr(real, ann):
                        want = getattr(real, ann)
                        if isinstance(want, type) and not isinstance(value, want):
                            text = f"{name}: {pname} must be a {ann}, got {type(value).__name__} {value!r}"
                            dev.violations.append(text)
                            raise TypeError(text)
            if sim is None:
                text = f"{name} is not simulated: add it to simcuda.py before sredge uses it"
                dev.violations.append(text)
                raise AssertionError(text)
            self.__dict__["used"].add(name)
            return sim(*args, **kwargs)

        call.__name__ = name
        return call

    # -- helpers ------------------------------------------------------------

    @property
    def _d(self) -> SimDevice:
        return self.__dict__["_dev"]

    def _r(self, *values: Any) -> tuple:
        return (_ok(self.__dict__["_real"]), *values)

    def _err(self, name: str) -> tuple:
        return (getattr(self.__dict__["_real"].cudaError_t, name), None)

    # -- device -------------------------------------------------------------

    def _sim_cudaGetDeviceCount(self) -> tuple:
        if self._d.count == 0:
            return self._err("cudaErrorNoDevice")
        return self._r(self._d.count)

    def _sim_cudaGetDevice(self) -> tuple:
        return self._r(0)

    def _sim_cudaGetDeviceProperties(self, device: int) -> tuple:
        props = self.__dict__["_real"].cudaDeviceProp()
        props.name = self._d.name.encode().ljust(256, b"\0")
        props.major, props.minor = self._d.major, self._d.minor
        return self._r(props)

    # -- memory -------------------------------------------------------------

    def _sim_cudaMalloc(self, size: int) -> tuple:
        return self._r(self._d.malloc(int(size)))

    def _sim_cudaFree(self, ptr: int) -> tuple:
        self._d.drain_all()  # cudaFree synchronizes the device
        if int(ptr) not in self._d.allocations:
            self._d.fail(f"cudaFree({int(ptr):#x}): not the start of a cudaMalloc allocation")
        del self._d.allocations[int(ptr)]
        return self._r()

    def _sim_cudaMallocHost(self, size: int) -> tuple:
        buf = ctypes.create_string_buffer(int(size))
        addr = ctypes.addressof(buf)
        self._d.pinned[addr] = buf
        return self._r(addr)

    def _sim_cudaFreeHost(self, ptr: int) -> tuple:
        self._d.drain_all()
        if int(ptr) not in self._d.pinned:
            self._d.fail(f"cudaFreeHost({int(ptr):#x}): not from cudaMallocHost")
        del self._d.pinned[int(ptr)]
        return self._r()

    def _check_copy(self, dst: int, src: int, count: int, kind_name: str) -> None:
        """The direction and bounds of a copy, checked when it is issued (before any host memory is read)."""
        d = self._d
        if kind_name == "cudaMemcpyHostToDevice":
            if d.is_device(src):
                d.fail(f"{kind_name}: the source {src:#x} is device memory (arguments swapped?)")
            d.device_span(dst, count, f"{kind_name} destination")
        elif kind_name == "cudaMemcpyDeviceToHost":
            if d.is_device(dst):
                d.fail(f"{kind_name}: the destination {dst:#x} is device memory (arguments swapped?)")
            d.device_span(src, count, f"{kind_name} source")
        else:
            d.fail(f"{kind_name} is not simulated")

    def _copy_now(self, dst: int, src: int, count: int, kind_name: str, staged: bytes | None = None) -> None:
        d = self._d
        self._check_copy(dst, src, count, kind_name)
        if kind_name == "cudaMemcpyHostToDevice":
            buf, off = d.device_span(dst, count, f"{kind_name} destination")
            data = staged if staged is not None else ctypes.string_at(src, count)
            buf[off:off + count] = data
            base = dst - off
            d.writes[base] = count
        elif kind_name == "cudaMemcpyDeviceToHost":
            buf, off = d.device_span(src, count, f"{kind_name} source")
            if d.is_device(dst):
                d.fail(f"{kind_name}: the destination {dst:#x} is device memory (arguments swapped?)")
            ctypes.memmove(dst, bytes(buf[off:off + count]), count)
        else:
            d.fail(f"{kind_name} is not simulated")

    def _sim_cudaMemcpy(self, dst: Any, src: Any, count: int, kind: Any) -> tuple:
        self._d.drain_all()  # synchronous with respect to the device
        self._d.copies.append(CopyRecord(kind.name, int(count), False, False))
        self._check_copy(int(dst), int(src), int(count), kind.name)
        self._copy_now(int(dst), int(src), int(count), kind.name)
        return self._r()

    def _sim_cudaMemcpyAsync(self, dst: Any, src: Any, count: int, kind: Any, stream: Any) -> tuple:
        d = self._d
        dst, src, count, s = int(dst), int(src), int(count), int(stream)
        host = src if kind.name == "cudaMemcpyHostToDevice" else dst
        pinned = d.pinned_span(host, count)
        d.copies.append(CopyRecord(kind.name, count, pinned, True))
        self._check_copy(dst, src, count, kind.name)
        if not pinned and kind.name == "cudaMemcpyHostToDevice":
            staged = ctypes.string_at(src, count)  # pageable: staged before the call returns
            d.enqueue(s, Op(s, "copy", lambda: self._copy_now(dst, src, count, kind.name, staged)))
        elif not pinned and kind.name == "cudaMemcpyDeviceToHost":
            d.enqueue(s, Op(s, "copy", lambda: self._copy_now(dst, src, count, kind.name)))
            d.drain(s)  # pageable destination: the copy is done when the call returns
        else:
            d.enqueue(s, Op(s, "copy", lambda: self._copy_now(dst, src, count, kind.name)))
        return self._r()

    # -- streams and events ---------------------------------------------------

    def _sim_cudaStreamCreate(self) -> tuple:
        h = self._d.new_handle()
        self._d.queues[h] = []
        return self._r(self.__dict__["_real"].cudaStream_t(h))

    def _sim_cudaStreamSynchronize(self, stream: Any) -> tuple:
        self._d.drain(int(stream))
        return self._r()

    def _sim_cudaStreamDestroy(self, stream: Any) -> tuple:
        self._d.drain(int(stream))
        self._d.queues.pop(int(stream), None)
        return self._r()

    def _sim_cudaEventCreateWithFlags(self, flags: Any) -> tuple:
        h = self._d.new_handle()
        self._d.events[h] = None
        return self._r(self.__dict__["_real"].cudaEvent_t(h))

    def _sim_cudaEventCreate(self) -> tuple:
        return self._sim_cudaEventCreateWithFlags(0)

    def _sim_cudaEventRecord(self, event: Any, stream: Any) -> tuple:
        e, s = int(event), int(stream)
        if e not in self._d.events:
            self._d.fail(f"cudaEventRecord: {e:#x} is not an event")
        op = Op(s, "record", event=e)
        self._d.enqueue(s, op)
        self._d.events[e] = (s, op.seq)
        return self._r()

    def _sim_cudaEventSynchronize(self, event: Any) -> tuple:
        rec = self._d.events.get(int(event), "missing")
        if rec == "missing":
            self._d.fail(f"cudaEventSynchronize: {int(event):#x} is not an event")
        if rec is not None:
            self._d.drain(rec[0], rec[1])
        return self._r()

    def _sim_cudaStreamWaitEvent(self, stream: Any, event: Any, flags: Any) -> tuple:
        rec = self._d.events.get(int(event), "missing")
        if rec == "missing":
            self._d.fail(f"cudaStreamWaitEvent: {int(event):#x} is not an event")
        if rec is not None:  # waiting on a never-recorded event is a no-op, as in CUDA
            self._d.enqueue(int(stream), Op(int(stream), "wait", waits_for=rec))
        return self._r()

    def _sim_cudaEventDestroy(self, event: Any) -> tuple:
        self._d.events.pop(int(event), None)
        return self._r()
