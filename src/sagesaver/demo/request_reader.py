"""The 500-query ``GetMetricData`` request read by a reader compiled from its input shape, for
benchmarks at fleet scale.

moto's ``JSONParser`` walks the operation's input shape for each value of the request body:
for each member of each structure it dispatches on the type name with ``getattr`` and looks
up the member's serialized name. A ``GetMetricData`` of 500 queries holds about 7,500 values
(query, metric stat, metric, dimensions): reading it costs moto about as much as answering it.

With :attr:`AwsBehaviours.fast_serialization` on, the requests of :data:`READ_OPERATIONS` (JSON
protocol, plain ``dict`` parameters) are read by a reader compiled once per input shape, which
converts each value as ``JSONParser`` does (same types, same keys in the same order). A body
that is not JSON, or any error, goes to moto's own parser, which then gives moto's parameters
or moto's error. ``tests/demo/test_request_reader.py`` compares the parameters, types
included.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from typing import Any

READ_OPERATIONS = frozenset({("cloudwatch", "GetMetricData")})
_INSTALLED_FLAG = "_sagesaver_request_reader"

Read = Callable[[Any], Any]


class _Compiler:
    """Readers for input shapes, remembered by identity (the shapes are kept)."""

    def __init__(self) -> None:
        self._readers: dict[int, tuple[Any, Read]] = {}
        self._lock = threading.Lock()

    def reader(self, shape: Any) -> Read:
        found = self._readers.get(id(shape))
        if found is not None and found[0] is shape:
            return found[1]
        with self._lock:
            read = self._compile(shape)
            self._readers[id(shape)] = (shape, read)
        return read

    def _compile(self, shape: Any) -> Read:
        from moto.core.parse import default_timestamp_parser

        kind = shape.type_name
        if kind == "structure":
            return _as_is if shape.is_document_type else self._structure(shape)
        if kind == "list":
            items = _Deferred(self, shape.member)
            return lambda node: [items.read(item) for item in node]
        if kind == "map":
            keys, values = _Deferred(self, shape.key), _Deferred(self, shape.value)
            return lambda node: {keys.read(k): values.read(v) for k, v in node.items()}
        if kind == "timestamp":
            return default_timestamp_parser
        if kind == "blob":
            return base64.b64decode
        if kind in ("float", "double"):
            return float
        if kind in ("integer", "byte", "short", "long"):
            return int
        return _as_is  # strings, booleans and the rest: moto keeps the JSON value

    def _structure(self, shape: Any) -> Read:
        members = [
            (name, member.serialization.get("name", name), _Deferred(self, member))
            for name, member in shape.members.items()
        ]

        def read_structure(value: Any) -> Any:
            if value is None:  # moto keeps a JSON null structure as None
                return None
            parsed = {}
            for name, json_name, member in members:
                raw = value.get(json_name)
                if raw is not None:
                    parsed[name] = member.read(raw)
            return parsed

        return read_structure


class _Deferred:
    """A member's reader, compiled at first use (input shapes can refer to themselves)."""

    __slots__ = ("_compiler", "_shape", "read")

    def __init__(self, compiler: _Compiler, shape: Any) -> None:
        self._compiler = compiler
        self._shape = shape
        self.read: Read = self._first

    def _first(self, value: Any) -> Any:
        self.read = self._compiler.reader(self._shape)
        return self.read(value)


def _as_is(value: Any) -> Any:
    return value


_COMPILER = _Compiler()


def read_parameters(input_shape: Any, body: bytes | str) -> dict[str, Any]:
    """The parameters moto's ``JSONParser`` (with ``dict`` maps) reads from ``body``; raises
    for what is left to moto (a body that is not JSON, values of the wrong JSON type)."""
    if input_shape is None:
        return {}
    if not body:
        parsed_json: Any = {}
    else:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        parsed_json = json.loads(text)  # moto reads a body that is not JSON otherwise
    parameters: dict[str, Any] = _COMPILER.reader(input_shape)(parsed_json)
    return parameters


def _reading_parse_parameters(original: Callable[..., None]) -> Callable[..., None]:
    def parse_parameters(self: Any, request: Any) -> None:
        from moto.core.parse import PROTOCOL_PARSERS, JSONParser
        from moto.core.request import determine_request_protocol
        from moto.core.utils import get_service_model

        from sagesaver.demo.simulator import BEHAVIOURS

        if not BEHAVIOURS.fast_serialization or self.PROTOCOL_PARSER_MAP_TYPE is not dict:
            original(self, request)
            return
        service_model = get_service_model(self.boto3_service_name)
        action = self._get_action()
        if (service_model.service_name, action) not in READ_OPERATIONS:
            original(self, request)
            return
        try:
            protocol = determine_request_protocol(service_model, request.content_type)
            if PROTOCOL_PARSERS.get(protocol) is not JSONParser:
                original(self, request)
                return
            shape = service_model.operation_model(action).input_shape
            self.params = read_parameters(shape, request.data)
        except Exception:  # moto's own parser gives moto's parameters, or moto's error
            original(self, request)

    return parse_parameters


def install() -> None:
    """Wrap moto's request parsing (once per process); it reads only while
    :attr:`AwsBehaviours.fast_serialization` is on."""
    from moto.core.responses import BaseResponse

    from sagesaver.demo.fast_serialization import wrap_once

    wrap_once(BaseResponse, "parse_parameters", _reading_parse_parameters, _INSTALLED_FLAG)
