"""The scan's biggest answers written by a writer compiled from their output shape, for
benchmarks at fleet scale.

Even with the remembered member names of ``fast_serialization.py``, moto serializes each
member of each object through half a dozen calls (``get_value``, ``_serialize`` with its
``getattr`` dispatch on the type name, the path kept for transformers, a wrapper dict per list
item). A ``GetMetricData`` answer of 500 results, a ``ListMetrics`` page of 500 metrics and a
``Search`` page of 100 endpoints cost it 20-40 ms each, which a benchmark at 20,000 endpoints
then measures instead of SageSaver.

With :attr:`SpeedUps.fast_serialization` on, the answers of :data:`WRITTEN_OPERATIONS`
(JSON protocol, moto's default value picker, no response transformers) are built by a writer
compiled once per output shape: for each structure, and each set of keys of a plain ``dict``
(or each class of a plain object), which key or attribute holds each member is decided once,
with moto's own alias providers and in their order; each member is then converted as moto's
``JSONSerializer`` converts its type, and moto's own ``_serialized_result_to_response`` makes
the body and headers. Anything the writer does not know (another operation, a mapping that is
not a ``dict``, an object with ``Meta`` aliases, a shape with names moto handles oddly) or any
error goes to moto's own path, which then gives moto's answer or moto's error.
``benchmarks/tests/test_answer_writer.py`` compares the answers byte for byte.
"""

from __future__ import annotations

import calendar
import threading
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any

WRITTEN_OPERATIONS = frozenset(
    {
        ("cloudwatch", "GetMetricData"),
        ("cloudwatch", "ListMetrics"),
        ("sagemaker", "Search"),
        ("sagemaker", "DescribeEndpointConfig"),  # 10,000 of them in a first scan of 20,000
    }
)
_INSTALLED_FLAG = "_sagesaver_answer_writer"
MAX_PLANS = 10_000  # per structure: sets of dict keys (or classes) remembered
_NOTHING = object()  # what moto writes for a structure that is None: nothing at all

# (serializer, value) -> the JSON-ready value moto would write, or _NOTHING
Write = Callable[[Any, Any], Any]


class Unhandled(Exception):
    """A value or shape the compiled writer leaves to moto."""


class _Compiler:
    """Compiles writers for the shapes of one serializer class and value picker setup.

    Shapes are remembered by identity (moto's service models are cached, so an operation's
    shapes are the same objects at every request) and kept, so an id is never reused."""

    def __init__(self) -> None:
        self._writers: dict[int, tuple[Any, Write]] = {}
        self._lock = threading.Lock()

    def writer(self, shape: Any) -> Write:
        found = self._writers.get(id(shape))
        if found is not None and found[0] is shape:
            return found[1]
        with self._lock:
            written = self._compile(shape)
            self._writers[id(shape)] = (shape, written)
        return written

    def _compile(self, shape: Any) -> Write:
        kind = shape.type_name
        if kind == "structure":
            if shape.is_document_type:
                return _as_is
            return self._structure(shape)
        if kind == "list":
            return self._list(shape)
        if kind == "map":
            return self._map(shape)
        if kind == "timestamp":
            return _timestamp(shape)
        if kind in ("integer", "long"):
            return _integer
        if kind in ("float", "double"):
            return _float
        if kind == "string":
            return _string
        if kind == "blob":
            return _blob
        return _as_is  # boolean and the rest: moto writes the value itself

    def _list(self, shape: Any) -> Write:
        member = shape.member
        if member.serialization.get("name", member.name) != member.name:
            raise Unhandled(f"list {shape.name}: its member has a serialized name")
        items = _Deferred(self, member)

        def write_list(serializer: Any, value: Any) -> Any:
            write = items.write
            out = []
            for item in value:
                written = write(serializer, item)
                # moto appends the item itself when its serializer wrote nothing (None)
                out.append(item if written is _NOTHING else written)
            return out

        return write_list

    def _map(self, shape: Any) -> Write:
        if "name" in shape.value.serialization:
            raise Unhandled(f"map {shape.name}: its values have a serialized name")
        values = _Deferred(self, shape.value)

        def write_map(serializer: Any, value: Any) -> Any:
            write = values.write
            out = {}
            for key, item in value.items():
                if type(key) is not str or not key:  # moto writes "" keys oddly
                    raise Unhandled("map key")
                written = write(serializer, item)
                if written is not _NOTHING:
                    out[key] = written
            return out

        return write_map

    def _structure(self, shape: Any) -> Write:
        members: list[tuple[str, Any, str, _Deferred]] = []
        for key, member in shape.members.items():
            member.parent = shape  # as moto's serializer sets it (its alias providers read it)
            document = member.type_name == "structure" and member.is_document_type
            name = key if document else member.serialization.get("name", key)
            members.append((key, member, name, _Deferred(self, member)))
        plans: dict[Any, list[tuple[str, _Deferred, Any]]] = {}

        def plan_for(serializer: Any, value: Any, source: dict[str, Any], plan_key: Any) -> Any:
            """(output name, writer, where) for each member found; where: the key of
            ``source`` (the dict, or the object's ``__dict__``) holding it, or the names to try
            in moto's order with moto's lookup (a dotted name is a path into the values)."""
            plan: list[tuple[str, _Deferred, Any]] = []
            for key, member, name, write in members:
                for candidate in _possible_names(serializer, value, key, member):
                    if "." in candidate:
                        plan.append((name, write, _possible_names(serializer, value, key, member)))
                        break
                    if type(value) is not dict and hasattr(type(value), candidate):
                        raise Unhandled(f"class attribute {candidate}")  # getattr finds it
                    if candidate in source:
                        plan.append((name, write, candidate))
                        break
            if len(plans) > MAX_PLANS:
                plans.clear()
            plans[plan_key] = plan
            return plan

        def write_structure(serializer: Any, value: Any) -> Any:
            if value is None:
                return _NOTHING
            if type(value) is dict:
                source = value
                plan_key: Any = tuple(value)
            else:
                source = _attributes(value)
                plan_key = (type(value), tuple(source))
            plan = plans.get(plan_key)
            if plan is None:
                plan = plan_for(serializer, value, source, plan_key)
            out = {}
            for name, write, where in plan:
                found = source[where] if type(where) is str else _first_found(value, where)
                if found is not None:
                    written = write.write(serializer, found)
                    if written is not _NOTHING:
                        out[name] = written
            return out

        return write_structure


class _Deferred:
    """A member's writer, compiled at first use (output shapes can refer to themselves)."""

    __slots__ = ("_compiler", "_shape", "write")

    def __init__(self, compiler: _Compiler, shape: Any) -> None:
        self._compiler = compiler
        self._shape = shape
        self.write: Write = self._first

    def _first(self, serializer: Any, value: Any) -> Any:
        self.write = self._compiler.writer(self._shape)
        return self.write(serializer, value)


def _possible_names(serializer: Any, value: Any, key: str, shape: Any) -> tuple[str, ...]:
    """The names moto's value picker tries for member ``key`` of ``value``, in its order: for
    a plain dict or an object without ``Meta`` they depend only on the key, the member's shape
    (and its parent) and the value's class."""
    from moto.core.serialize import AttributePickerContext

    context = AttributePickerContext(
        obj=value,
        key=key,
        shape=shape,
        operation_model=serializer.operation_model,
        service_model=serializer.operation_model.service_model,
        key_path=".".join(serializer.path),
    )
    return tuple(serializer._value_picker.get_possible_keys(context))


_PLAIN_CLASSES: dict[type, bool] = {}


def _attributes(value: Any) -> dict[str, Any]:
    """The attributes of a plain object, where moto's ``getattr`` finds them: its ``__dict__``
    (a class that computes attributes, or an object moto indexes or aliases, is left to moto;
    class attributes of the names looked for are refused when a plan is made)."""
    kind = type(value)
    plain = _PLAIN_CLASSES.get(kind)
    if plain is None:
        plain = (
            getattr(kind, "__getattribute__", None) is object.__getattribute__
            and not hasattr(kind, "__getattr__")
            and not hasattr(kind, "__getitem__")
            and not hasattr(kind, "Meta")
            and hasattr(value, "__dict__")
        )
        _PLAIN_CLASSES[kind] = plain
    if not plain:
        raise Unhandled(f"{kind.__name__} objects")
    source: dict[str, Any] = value.__dict__
    if "__getitem__" in source or "Meta" in source:
        raise Unhandled(f"this {kind.__name__} object")
    return source


def _first_found(value: Any, names: tuple[str, ...]) -> Any:
    from moto.core.constants import MISSING
    from moto.core.utils import get_value

    for name in names:
        found = get_value(value, name, MISSING)
        if found is not MISSING:
            return found
    return None


def _as_is(serializer: Any, value: Any) -> Any:
    return value


def _integer(serializer: Any, value: Any) -> Any:
    return int(value)


def _float(serializer: Any, value: Any) -> Any:
    return float(value)


def _blob(serializer: Any, value: Any) -> Any:
    return serializer._base64(value)


def _string(serializer: Any, value: Any) -> Any:
    if type(value) is str:
        return value
    if isinstance(value, Enum):
        value = value.value
    return str(value) if value not in [None, {}, []] else value


def _timestamp(shape: Any) -> Write:
    chosen = shape.serialization.get("timestampFormat")

    def write_timestamp(serializer: Any, value: Any) -> Any:
        form = chosen or serializer._timestamp_serializer.default_format
        if type(value) is datetime and value.tzinfo is None and form.lower() == "unixtimestamp":
            # moto: UTC assumed, seconds, milliseconds kept (truncated) when there are any
            seconds = calendar.timegm(value.timetuple())
            return seconds + (value.microsecond // 1000) / 1000.0 if value.microsecond else seconds
        return serializer._timestamp_serializer._convert_timestamp_to_str(value, form)

    return write_timestamp


_COMPILER = _Compiler()


def written_result(serializer: Any, result: Any) -> dict[str, Any]:
    """The JSON-ready answer moto's ``JSONSerializer`` would build for ``result``; raises
    :class:`Unhandled` (or any error) for what is left to moto."""
    shape = serializer.operation_model.output_shape
    if shape is None:
        return {}
    if shape.is_document_type:
        raise Unhandled("document output")
    written = _COMPILER.writer(shape)(serializer, result)
    return {} if written is _NOTHING else dict(written)


def _applies(serializer: Any) -> bool:
    from moto.core.serialize import DEFAULT_ALIAS_PROVIDERS, JSONSerializer, XFormedAttributePicker

    from benchmarks.fast_moto.flags import SPEEDUPS

    model = serializer.operation_model
    picker = serializer._value_picker
    return bool(
        SPEEDUPS.fast_serialization
        and type(serializer) is JSONSerializer
        and (model.service_model.service_name, model.name) in WRITTEN_OPERATIONS
        and type(picker) is XFormedAttributePicker
        and picker.alias_providers is DEFAULT_ALIAS_PROVIDERS
        and not picker.response_transformers
        and not model.has_event_stream_output
    )


def _writing_serialize_result(original: Callable[..., Any]) -> Callable[..., Any]:
    def serialize_result(self: Any, resp: Any, result: Any) -> Any:
        if not _applies(self):
            return original(self, resp, result)
        try:
            written = written_result(self, result)
        except Exception:  # moto's own path gives moto's answer, or moto's error
            return original(self, resp, result)
        shape = self.operation_model.output_shape
        return self._serialized_result_to_response(resp, result, shape, written)

    return serialize_result


def install() -> None:
    """Wrap moto's JSON serializer (once per process); it writes only while
    :attr:`SpeedUps.fast_serialization` is on."""
    from moto.core.serialize import JSONSerializer

    from benchmarks.fast_moto.fast_serialization import wrap_once

    wrap_once(JSONSerializer, "_serialize_result", _writing_serialize_result, _INSTALLED_FLAG)
