"""moto's answers serialized with less of moto's own cost, for benchmarks at fleet scale.

moto builds every answer by walking the operation's output shape and, for each member of each
object, asking up to six "alias providers" (each a new object) which attribute or key holds
its value, then trying each of their names and a snake_case form of each. A page of 100
``Search`` records or a ``GetMetricData`` answer of 500 results asks about 4,000 members:
serializing them is most of what moto spends on such a request, and real AWS spends nothing
like it per member.

With :attr:`AwsBehaviours.fast_serialization` on, the names to try for a member of a plain
``dict`` (what moto's SageMaker and CloudWatch answers are made of) are asked of moto's
providers once per member key and shape, then remembered: for a ``dict`` they depend on
nothing else (it has no ``Meta`` aliases, and its class name is always ``dict``). The names are
tried in moto's order with moto's own lookup, and moto's response transformers applied, so
the value found, and the answer, are moto's (``tests/demo/test_fast_serialization.py``
compares answers byte for byte); other objects always go through moto's own picker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_INSTALLED_FLAG = "_sagesaver_fast_serialization"
MAX_REMEMBERED = 100_000


def _fast_picker(original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``XFormedAttributePicker.__call__`` that, for a member of a ``dict``, tries the names
    moto's providers give for that member's key and shape, remembered."""
    from moto.core.constants import MISSING
    from moto.core.serialize import DEFAULT_ALIAS_PROVIDERS
    from moto.core.utils import get_value

    # (key, id(shape)) -> (shape, names): the shape is kept, so its id is not reused
    remembered: dict[tuple[str, int], tuple[Any, tuple[str, ...]]] = {}

    def names_for(picker: Any, context: Any) -> tuple[str, ...]:
        entry = (context.key, id(context.shape))
        found = remembered.get(entry)
        if found is not None and found[0] is context.shape:
            return found[1]
        names = tuple(picker.get_possible_keys(context))
        if len(remembered) > MAX_REMEMBERED:
            remembered.clear()
        remembered[entry] = (context.shape, names)
        return names

    def pick(self: Any, context: Any) -> Any:
        from sagesaver.demo.simulator import BEHAVIOURS

        obj = context.obj
        if (
            not BEHAVIOURS.fast_serialization
            or type(obj) is not dict
            or self.alias_providers is not DEFAULT_ALIAS_PROVIDERS
        ):
            return original(self, context)
        value = None
        for name in names_for(self, context):
            found = get_value(obj, name, MISSING)
            if found is not MISSING:
                value = found
                break
        key_path = f"{context.key_path}.{context.key}"
        for transform_path, transform in self.response_transformers.items():
            if key_path.endswith(transform_path):
                return transform(value)
        return value

    return pick


def install() -> None:
    """Wrap moto's attribute picker (once per process); it acts only while
    :attr:`AwsBehaviours.fast_serialization` is on."""
    from moto.core.serialize import XFormedAttributePicker

    if getattr(XFormedAttributePicker, _INSTALLED_FLAG, False):
        return
    picker = XFormedAttributePicker.__call__
    setattr(XFormedAttributePicker, "__call__", _fast_picker(picker))  # noqa: B010
    setattr(XFormedAttributePicker, _INSTALLED_FLAG, True)
