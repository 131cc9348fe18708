"""The ledger's typed outcomes: what counts as carried out, and how entries written before
outcomes were typed (text only) are read."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from sagesaver.core.records import Entry, Outcome, outcome_of_text

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=timezone.utc)


def entry(outcome: str, status: Outcome | str | None = None, dry_run: bool = False) -> Entry:
    return Entry(
        T0, "123456789012", "us-east-1", "endpoint", "ep", "delete", "idle-endpoint", "idle",
        0.23, dry_run, outcome, status=status,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("deleted with its configuration; backup in l (backup b)", Outcome.DONE),
        ("done", Outcome.DONE),
        ("restored", Outcome.DONE),
        ("released: KeepAlivePeriodInSeconds set to 0", Outcome.DONE),
        ("deleted (confirmed by a later run); backup in l", Outcome.CONFIRMED),
        ("warm pool ended (confirmed by a later run; no saving counted)", Outcome.CONFIRMED),
        ("failed: Throttling", Outcome.FAILED),
        ("skipped: another run is acting on it", Outcome.SKIPPED),
        ("stopped: another run took it over", Outcome.SKIPPED),
        ("not done: the digest announcing it could not be sent", Outcome.SKIPPED),
        ("not confirmed: DeleteEndpoint was sent", Outcome.UNCONFIRMED),
        ("delete scheduled for 2026-11-30 08:00 UTC", Outcome.PLANNED),
        ("spared: used again", Outcome.PLANNED),
    ],
)
def test_entries_of_an_earlier_version_are_read_by_their_text(text: str, expected: Outcome) -> None:
    assert outcome_of_text(text) is expected
    assert entry(text).status is expected


def test_only_an_act_that_happened_for_real_is_carried_out() -> None:
    assert entry("deleted").carried_out
    assert entry("deleted (confirmed by a later run)").carried_out
    assert not entry("deleted", dry_run=True).carried_out
    # the type decides, not the words: a typed skip whose text reads like a deletion
    assert not entry("deleted? no: skipped", Outcome.SKIPPED).carried_out
    for status in (Outcome.FAILED, Outcome.UNCONFIRMED, Outcome.PLANNED, Outcome.SKIPPED):
        assert not entry("x", status).carried_out


def test_a_store_gives_the_status_back_as_its_value() -> None:
    assert entry("x", "confirmed").status is Outcome.CONFIRMED
    with pytest.raises(ValueError):
        entry("x", "maybe")
