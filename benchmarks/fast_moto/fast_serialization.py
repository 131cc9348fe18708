"""moto's answers serialized with less of moto's own cost, for benchmarks at fleet scale.

moto builds every answer by walking the operation's output shape and, for each member of each
object, asking up to six "alias providers" (each a new object) which attribute or key holds
its value, then trying each of their names and a snake_case form of each. A page of 100
``Search`` records or a ``GetMetricData`` answer of 500 results asks about 4,000 members:
serializing them is most of what moto spends on such a request, and real AWS spends nothing
like it per member.

With :attr:`SpeedUps.fast_serialization` on, the names to try for a member of a plain
``dict`` (what moto's SageMaker and CloudWatch answers are made of) are asked of moto's
providers once per member key and shape, then remembered: for a ``dict`` they depend on
nothing else (it has no ``Meta`` aliases, and its class name is always ``dict``). The names are
tried in moto's order with moto's own lookup, and moto's response transformers applied, so
the value found, and the answer, are moto's (``benchmarks/tests/test_fast_serialization.py``
compares answers byte for byte); other objects always go through moto's own picker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_INSTALLED_FLAG = "_sagesaver_fast_serialization"
MAX_REMEMBERED = 100_000


def _fast_get_value(original: Callable[..., Any]) -> Callable[..., Any]:
    """``ResponseSerializer.get_value`` that, for a member of a ``dict`` and moto's own
    picker, tries the names moto's providers give for that member's key and shape,
    remembered, without building a context for each member."""
    from moto.core.constants import MISSING
    from moto.core.serialize import (
        DEFAULT_ALIAS_PROVIDERS,
        AttributePickerContext,
        XFormedAttributePicker,
    )
    from moto.core.utils import get_value

    # (key, id(shape)) -> (shape, (name, dotted)...): the shape is kept, so its id is not reused
    remembered: dict[tuple[str, int], tuple[Any, tuple[tuple[str, bool], ...]]] = {}

    def names_for(serializer: Any, picker: Any, value: Any, key: str, shape: Any) -> Any:
        entry = (key, id(shape))
        found = remembered.get(entry)
        if found is not None and found[0] is shape:
            return found[1]
        context = AttributePickerContext(
            obj=value,
            key=key,
            shape=shape,
            operation_model=serializer.operation_model,
            service_model=serializer.operation_model.service_model,
            key_path=".".join(serializer.path),
        )
        # moto's lookup of an undotted name in a dict is the dict's own; a dotted one is a path
        names = tuple((name, "." in name) for name in picker.get_possible_keys(context))
        if len(remembered) > MAX_REMEMBERED:
            remembered.clear()
        remembered[entry] = (shape, names)
        return names

    def fast(self: Any, value: Any, key: str, shape: Any) -> Any:
        from benchmarks.fast_moto.flags import SPEEDUPS

        picker = self._value_picker
        if (
            not SPEEDUPS.fast_serialization
            or type(value) is not dict
            or type(picker) is not XFormedAttributePicker
            or picker.alias_providers is not DEFAULT_ALIAS_PROVIDERS
        ):
            return original(self, value, key, shape)
        member = None
        for name, dotted in names_for(self, picker, value, key, shape):
            found = get_value(value, name, MISSING) if dotted else value.get(name, MISSING)
            if found is not MISSING:
                member = found
                break
        if picker.response_transformers:
            key_path = ".".join(self.path) + "." + key
            for transform_path, transform in picker.response_transformers.items():
                if key_path.endswith(transform_path):
                    return transform(member)
        return member

    return fast


def wrap_once(owner: type, attribute: str, wrap: Callable[[Any], Any], flag: str) -> None:
    """Replace ``owner.attribute`` by ``wrap(owner.attribute)``, once per process (``flag``,
    set on ``owner``, says it is done)."""
    if getattr(owner, flag, False):
        return
    setattr(owner, attribute, wrap(getattr(owner, attribute)))
    setattr(owner, flag, True)


def install() -> None:
    """Wrap moto's serializer (once per process); it acts only while
    :attr:`SpeedUps.fast_serialization` is on."""
    from moto.core.serialize import ResponseSerializer

    wrap_once(ResponseSerializer, "get_value", _fast_get_value, _INSTALLED_FLAG)
