"""Thresholds on money: the policy's ``min_hourly_cost`` (too cheap to act on) and the
``--fail-on-cost`` limit of ``scan`` and ``report`` (too much idle cost: exit 3).

Money is compared in one currency at a time and never converted; an unknown price is never a
number: it is never below a minimum, and never counted towards a limit (it is told apart).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from sagesaver.core.digest import REPORTED, cost_by_currency
from sagesaver.core.model import Action, Decision
from sagesaver.core.partitions import currency_of

BELOW_MIN_COST = "below-min-cost"
_LIMIT_RE = re.compile(r"(?P<amount>\d+(?:\.\d+)?)\s*(?P<currency>[A-Za-z]{3})?")


class CostLimitError(ValueError):
    """A ``--fail-on-cost`` that cannot be read or judged (exit code 2)."""


@dataclass(frozen=True)
class CostLimit:
    """An idle hourly cost not to exceed; ``currency`` None: the scan's single currency."""

    amount: float
    currency: str | None

    def text(self, currency: str) -> str:
        """The limit as the messages say it."""
        return f"{self.amount:g} {currency}"


def below_min_cost(decision: Decision, min_hourly_cost: float | None) -> Decision:
    """``decision`` kept (rule ``below-min-cost``, still reported) when it asks for something
    and its known price per hour, in its own currency, is below ``min_hourly_cost``."""
    if (
        min_hourly_cost is None
        or decision.action is Action.KEEP
        or decision.hourly_cost is None
        or decision.hourly_cost >= min_hourly_cost
    ):
        return decision
    return replace(
        decision,
        action=Action.KEEP,
        rule=BELOW_MIN_COST,
        reason=f"{decision.reason}; costs {decision.hourly_cost:g} {decision.cost_currency} "
        f"per hour, below min_hourly_cost {min_hourly_cost:g}: reported, never acted on",
    )


def parse_cost_limit(text: str) -> CostLimit:
    """``5``, ``5USD``, ``5 usd``, ``30CNY`` as a :class:`CostLimit`."""
    found = _LIMIT_RE.fullmatch(text.strip())
    if found is None or not math.isfinite(float(found["amount"])):
        raise CostLimitError(
            f"--fail-on-cost {text!r}: give an amount per hour, with or without a currency "
            "(5, 5USD, 30CNY)"
        )
    currency = found["currency"]
    return CostLimit(float(found["amount"]), currency.upper() if currency else None)


def check_cost_limit(
    decisions: Sequence[Decision], regions: Iterable[str], limit: CostLimit
) -> tuple[bool, str]:
    """Whether the known idle hourly cost (the decisions that ask for something) exceeds
    ``limit``, and what to say. Raises :class:`CostLimitError` when the limit has no currency
    and the scan has several, or names one the scan has no cost in (never converted)."""
    idle = [d for d in decisions if d.action in REPORTED]
    currencies = {currency_of(r) for r in regions} | {d.cost_currency for d in decisions}
    if limit.currency is None:
        if len(currencies) != 1:
            raise CostLimitError(
                f"--fail-on-cost {limit.amount:g}: the scan has costs in "
                f"{' and '.join(sorted(currencies))}; name one (e.g. {limit.amount:g}USD)"
            )
        currency = next(iter(currencies))
    elif limit.currency not in currencies:
        raise CostLimitError(
            f"--fail-on-cost {limit.text(limit.currency)}: the scan's costs are in "
            f"{' and '.join(sorted(currencies))}, never converted"
        )
    else:
        currency = limit.currency
    total = cost_by_currency([d for d in idle if d.cost_currency == currency]).get(currency, 0.0)
    unknown = sum(1 for d in idle if d.hourly_cost is None)
    note = f" ({unknown} more with an unknown price not counted)" if unknown else ""
    over = total > limit.amount
    verb = "exceeds" if over else "does not exceed"
    text = f"idle cost {total:g} {currency} per hour {verb} --fail-on-cost {limit.text(currency)}"
    return over, text + note
