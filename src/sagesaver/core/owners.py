"""Digests per owner: which idle resources each owner tag value names. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from sagesaver.core.digest import REPORTED
from sagesaver.core.model import Decision


def by_owner(decisions: Sequence[Decision], owner_tag: str) -> dict[str, list[Decision]]:
    """The reported decisions grouped by the value of ``owner_tag``, in owner order.

    A resource without the tag (or with an empty value) belongs to no owner: it is in the
    admin digest only.
    """
    groups: dict[str, list[Decision]] = {}
    for decision in decisions:
        if decision.action not in REPORTED:
            continue
        owner = decision.resource.tags.get(owner_tag, "").strip()
        if owner:
            groups.setdefault(owner, []).append(decision)
    return dict(sorted(groups.items()))
