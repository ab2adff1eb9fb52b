"""Objects that stand in for TensorRT's, checked against the REAL compiled Python bindings.

The real ``tensorrt_bindings`` module of a TensorRT version imports here over stub libraries
(``fetch.py``), so every class, method, property, enum member and pybind11 signature of that
exact version can be read, but nothing can be built or run: its factories return nullptr. A
:class:`ShadowModule` hands sredge real objects where they need no library (enums, ``Logger``,
``Dims``, the calibrator base classes) and :class:`ShadowObject` stand-ins for the rest
(``Builder``, ``Runtime``, ``OnnxParser`` and everything they return). On a stand-in:

* reading an attribute the real class lacks raises AttributeError (as the real one would);
* a method call must match one of the real pybind11 overloads (count, keyword names, types);
* writing an attribute needs a real property with a setter, and a value of the setter's type;
* what a call returns is produced by a *behaviour* (``simtrt.py``) and checked against the real
  return type, so the simulation cannot hand back what the real API never would.

Violations are recorded on the :class:`Checker` (and raised as :class:`ConformanceError`, a
TypeError, as pybind11 raises on a bad call), so code that swallows exceptions cannot hide one.
This proves names, signatures and types for one TensorRT version; it says nothing about what a
real build or engine does.
"""

from __future__ import annotations

import os
import re
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class ConformanceError(TypeError):
    """Code under test used the API in a way the real bindings would refuse."""


@dataclass
class Checker:
    """What one run touched and what it got wrong."""

    module: Any
    """The real TensorRT bindings module."""
    violations: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    """``Class.member`` names used successfully."""
    probed_missing: set[str] = field(default_factory=set)
    """Names looked up that this version lacks (feature probes, or mistakes if not caught)."""
    unchecked_types: set[str] = field(default_factory=set)

    def violation(self, text: str) -> ConformanceError:
        self.violations.append(text)
        return ConformanceError(text)


# --------------------------------------------------------------------------- pybind11 signatures


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    has_default: bool


@dataclass(frozen=True)
class Signature:
    params: tuple[Param, ...]
    """Without ``self``."""
    returns: str
    text: str


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def parse_signatures(name: str, doc: str | None) -> list[Signature]:
    """The pybind11 overloads of ``name`` from its docstring (``name(self: T, a: int = 0) -> bool``)."""
    sigs = []
    pattern = re.compile(rf"^\s*(?:\d+\.\s+)?{re.escape(name)}\((.*)\)\s*->\s*(.+?)\s*$")
    for line in (doc or "").splitlines():
        m = pattern.match(line)
        if not m or m.group(1) == "*args, **kwargs":
            continue
        params = []
        for i, raw in enumerate(_split_top(m.group(1))):
            head, _, default = raw.partition("=")
            pname, _, ptype = head.partition(":")
            pname, ptype = pname.strip(), ptype.strip()
            if i == 0 and (pname in ("self", "arg0")):
                continue
            params.append(Param(pname, ptype, bool(default.strip())))
        sigs.append(Signature(tuple(params), m.group(2).strip(), line.strip()))
    return sigs


def _short(type_name: str) -> str:
    for prefix in ("tensorrt_bindings.tensorrt.", "tensorrt.", "nvinfer1::", "nvonnxparser::", "typing.",
                   "typing_extensions.", "collections.abc."):
        type_name = type_name.replace(prefix, "")
    return type_name.strip()


def _real_class_of(value: Any) -> type | None:
    if isinstance(value, ShadowObject):
        return value._real_cls
    return type(value)


def accepts(checker: Checker, type_name: str, value: Any) -> bool:
    """Whether pybind11 would accept ``value`` for a parameter typed ``type_name``."""
    t = _short(type_name)
    mod = checker.module
    if t in ("object", "Any", "capsule"):
        return True
    if t.startswith("Optional[") or t.endswith("| None"):
        inner = t[len("Optional["):-1] if t.startswith("Optional[") else t[: -len("| None")]
        return value is None or accepts(checker, inner, value)
    if " | " in t:
        return any(accepts(checker, part, value) for part in t.split(" | "))
    if t in ("int", "SupportsInt", "SupportsIndex"):
        return isinstance(value, (int, np.integer)) or (not isinstance(value, (float, str, bytes))
                                                        and hasattr(value, "__index__"))
    if t == "bool":
        return isinstance(value, (bool, np.bool_))
    if t in ("float", "SupportsFloat"):
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if t == "str":
        return isinstance(value, str)
    if t in ("os.PathLike", "PathLike"):
        return isinstance(value, (str, os.PathLike))
    if t in ("buffer", "Buffer"):
        return isinstance(value, (bytes, bytearray, memoryview, np.ndarray))
    if t in ("tuple", "list"):
        return isinstance(value, (tuple, list))
    m = re.fullmatch(r"(?:List|list|Sequence|tuple|Tuple)\[(.+)\]", t)
    if m:
        inner = _split_top(m.group(1))[0]
        return isinstance(value, (list, tuple)) and all(accepts(checker, inner, v) for v in value)
    real = getattr(mod, t, None)
    if isinstance(real, type):
        if t in ("Dims", "Dims32", "Dims64", "Dims2", "Dims3", "Dims4", "DimsHW", "Permutation") and \
                isinstance(value, (tuple, list)):  # registered implicit conversion from a sequence of ints
            return all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
        cls = _real_class_of(value)
        return cls is not None and issubclass(cls, real)
    checker.unchecked_types.add(type_name)
    return True


def match_call(checker: Checker, sigs: list[Signature], args: tuple, kwargs: dict) -> Signature | None:
    """The first overload the call fits, or None."""
    for sig in sigs:
        params = sig.params
        if len(args) > len(params):
            continue
        bound: dict[str, Any] = {p.name: a for p, a in zip(params, args)}
        if any(k in bound or k not in {p.name for p in params} for k in kwargs):
            continue
        bound.update(kwargs)
        if any(p.name not in bound and not p.has_default for p in params):
            continue
        if all(accepts(checker, p.type, bound[p.name]) for p in params if p.name in bound):
            return sig
    return None


# --------------------------------------------------------------------------- stand-ins

Behaviour = Callable[..., Any]


class World:
    """Behaviours by ``"Class.member"`` (looked up along the real class's MRO) plus the state they keep."""

    def __init__(self, checker: Checker):
        self.checker = checker
        self.behaviours: dict[str, Behaviour] = {}

    def behaviour(self, cls: type, member: str) -> Behaviour | None:
        for klass in cls.__mro__:
            fn = self.behaviours.get(f"{klass.__name__}.{member}")
            if fn is not None:
                return fn
        return None

    def default_value(self, type_name: str, cls_name: str, member: str) -> Any:
        t = _short(type_name)
        if t == "None":
            return None
        if t == "bool":
            return True
        if t in ("int", "SupportsInt"):
            return 0
        if t == "str":
            return ""
        if re.fullmatch(r"(?:List|list)\[.+\]", t):
            return []
        real = getattr(self.checker.module, t, None)
        if isinstance(real, type):
            return ShadowObject(real, self)
        raise self.checker.violation(f"no behaviour for {cls_name}.{member} returning {type_name}")


class ShadowObject:
    """A stand-in for an instance of a real TensorRT class (see the module docstring)."""

    def __init__(self, real_cls: type, world: World, **state: Any):
        object.__setattr__(self, "_real_cls", real_cls)
        object.__setattr__(self, "_world", world)
        object.__setattr__(self, "state", dict(state))

    def __repr__(self) -> str:
        return f"<shadow {self._real_cls.__name__}>"

    def __getattr__(self, name: str) -> Any:
        cls, world = self._real_cls, self._world
        checker = world.checker
        qual = f"{cls.__name__}.{name}"
        if name.startswith("__"):
            raise AttributeError(name)
        attr = getattr(cls, name, None)
        if attr is None:
            checker.probed_missing.add(qual)
            raise AttributeError(f"'{cls.__name__}' object has no attribute '{name}' "
                                 f"(TensorRT {checker.module.__version__})")
        if isinstance(attr, property):
            checker.used.add(qual)
            if name in self.state:
                return self.state[name]
            ret = _property_type(attr)
            fn = world.behaviour(cls, name)
            value = fn(self) if fn else world.default_value(ret, cls.__name__, name)
            _check_return(checker, qual, ret, value)
            return value
        if callable(attr):
            sigs = parse_signatures(name, getattr(attr, "__doc__", None))
            if not sigs:
                raise checker.violation(f"{qual}: no pybind11 signature to check against")

            def call(*args: Any, **kwargs: Any) -> Any:
                sig = match_call(checker, sigs, args, kwargs)
                if sig is None:
                    shown = ", ".join([_describe(a) for a in args] + [f"{k}={_describe(v)}" for k, v in kwargs.items()])
                    raise checker.violation(f"{qual}({shown}) matches no overload of TensorRT "
                                            f"{checker.module.__version__}: {' | '.join(s.text for s in sigs)}")
                checker.used.add(qual)
                fn = world.behaviour(cls, name)
                value = fn(self, *args, **kwargs) if fn else world.default_value(sig.returns, cls.__name__, name)
                _check_return(checker, qual, sig.returns, value)
                return value

            return call
        return attr

    def __setattr__(self, name: str, value: Any) -> None:
        cls, checker = self._real_cls, self._world.checker
        qual = f"{cls.__name__}.{name}"
        attr = getattr(cls, name, None)
        if not isinstance(attr, property):
            raise checker.violation(f"{qual} = {_describe(value)}: TensorRT {checker.module.__version__} has no such "
                                    "property")
        if attr.fset is None:
            raise checker.violation(f"{qual} is read-only in TensorRT {checker.module.__version__}")
        sigs = [s for s in _setter_signatures(attr)]
        if sigs and not any(accepts(checker, s.params[0].type, value) for s in sigs if s.params):
            raise checker.violation(f"{qual} = {_describe(value)}: the setter takes "
                                    f"{' | '.join(s.params[0].type for s in sigs if s.params)}")
        checker.used.add(qual)
        fn = self._world.behaviour(cls, f"{name}=")
        if fn:
            fn(self, value)
        self.state[name] = value

    def __bytes__(self) -> bytes:
        if self._real_cls.__name__ != "IHostMemory":  # the buffer protocol of IHostMemory only
            raise self._world.checker.violation(f"bytes() of a {self._real_cls.__name__}")
        return bytes(self.state.get("data", b""))


def _property_type(prop: property) -> str:
    doc = getattr(prop.fget, "__doc__", "") or ""
    m = re.search(r"->\s*(\S.*?)\s*$", doc.splitlines()[0] if doc else "")
    return m.group(1) if m else "object"


def _setter_signatures(prop: property) -> list[Signature]:
    doc = getattr(prop.fset, "__doc__", "") or ""
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    m = re.match(r"^\((.*)\)\s*->", first)
    if not m:
        return []
    params = []
    for i, raw in enumerate(_split_top(m.group(1))):
        pname, _, ptype = raw.partition(":")
        if i == 0:
            continue
        params.append(Param(pname.strip(), ptype.strip(), False))
    return [Signature(tuple(params), "None", first)]


def _check_return(checker: Checker, qual: str, type_name: str, value: Any) -> None:
    if _short(type_name) == "None":
        if value is not None:
            raise checker.violation(f"simulation bug: {qual} returns None, the behaviour gave {_describe(value)}")
        return
    # pybind11 returns None for a null pointer of a class type.
    if value is None and isinstance(getattr(checker.module, _short(type_name), None), type):
        return
    if not accepts(checker, type_name, value):
        raise checker.violation(f"simulation bug: {qual} returns {type_name}, the behaviour gave {_describe(value)}")


def _describe(value: Any) -> str:
    if isinstance(value, ShadowObject):
        return repr(value)
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


class ShadowClass:
    """A real class whose construction needs TensorRT's library (``Builder``, ``Runtime``, ``OnnxParser``)."""

    def __init__(self, real_cls: type, world: World):
        self._real_cls, self._world = real_cls, world

    def __call__(self, *args: Any, **kwargs: Any) -> ShadowObject:
        checker, cls = self._world.checker, self._real_cls
        sigs = parse_signatures("__init__", cls.__init__.__doc__)
        if match_call(checker, sigs, args, kwargs) is None:
            raise checker.violation(f"{cls.__name__}({', '.join(map(_describe, args))}) matches no constructor: "
                                    f"{' | '.join(s.text for s in sigs)}")
        checker.used.add(f"{cls.__name__}.__init__")
        fn = self._world.behaviour(cls, "__init__")
        obj = ShadowObject(cls, self._world)
        if fn:
            fn(obj, *args, **kwargs)
        return obj

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real_cls, name)


FACTORY_CLASSES = ("Builder", "Runtime", "OnnxParser", "Refitter", "OnnxParserRefitter")


class ShadowModule(types.ModuleType):
    """``import tensorrt`` as sredge sees it in a conformance run (install in ``sys.modules``)."""

    def __init__(self, world: World):
        real = world.checker.module
        super().__init__("tensorrt")
        self.__dict__["_world"] = world
        self.__dict__["__version__"] = real.__version__

    def __getattr__(self, name: str) -> Any:
        world = self.__dict__["_world"]
        real = world.checker.module
        if not hasattr(real, name):
            world.checker.probed_missing.add(f"tensorrt.{name}")
            raise AttributeError(f"module 'tensorrt' has no attribute '{name}' (TensorRT {real.__version__})")
        world.checker.used.add(f"tensorrt.{name}")
        obj = getattr(real, name)
        if name in FACTORY_CLASSES:
            return ShadowClass(obj, world)
        if isinstance(obj, type) and hasattr(obj, "__members__"):
            return EnumProxy(obj, world.checker)
        return obj


class EnumProxy:
    """A real pybind11 enum whose member look-ups are recorded (members themselves are real)."""

    def __init__(self, real_enum: type, checker: Checker):
        self._real, self._checker = real_enum, checker

    def __getattr__(self, name: str) -> Any:
        qual = f"{self._real.__name__}.{name}"
        if name not in getattr(self._real, "__members__", {}) and not name.startswith("_"):
            if not hasattr(self._real, name):
                self._checker.probed_missing.add(qual)
                raise AttributeError(f"type object '{self._real.__name__}' has no attribute '{name}' "
                                     f"(TensorRT {self._checker.module.__version__})")
        self._checker.used.add(qual)
        return getattr(self._real, name)

    def __call__(self, *args: Any) -> Any:
        return self._real(*args)
