"""Issue 29: a backup's seal. Its containers' environment values are kept apart (sealed, in
clear, or names only) and a digest over the whole backup lets restore refuse one that was
changed after SageSaver wrote it."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from typing import Any

import pytest

from sagesaver.core.errors import InputError
from sagesaver.core.records import Backup
from sagesaver.core.sealing import (
    PART_BYTES,
    BackupRefused,
    Kept,
    Unsealed,
    digest,
    encryption_context,
    environment_values,
    masked_like,
    open_envelope,
    open_plain,
    seal_envelope,
    seal_plain,
    split,
    unkept_names,
    without_unkept,
)

T0 = datetime(2026, 11, 29, 8, 0, 12, 345678, tzinfo=timezone.utc)
SECRET = "sk-live-0123456789"


def document() -> dict[str, Any]:
    return {
        "format": 2,
        "region": "us-east-1",
        "endpoint": {"EndpointName": "ep", "EndpointConfigName": "ep-config", "Tags": []},
        "endpoint_config": {"arn": "arn", "spec": {"EndpointConfigName": "ep-config"}},
        "models": [
            {
                "spec": {
                    "ModelName": "solo",
                    "PrimaryContainer": {
                        "Image": "img",
                        "Environment": {"API_TOKEN": SECRET, "MODE": "fast"},
                    },
                },
                "tags": [],
            },
            {
                "spec": {
                    "ModelName": "pipeline",
                    "Containers": [
                        {"Image": "a"},
                        {"Image": "b", "Environment": {"DB_PASSWORD": "hunter2"}},
                    ],
                },
                "tags": [],
            },
        ],
        "scaling": {
            "targets": [],
            "policies": [],
            "scheduled_actions": [{"StartTime": datetime(2026, 12, 1, tzinfo=timezone.utc)}],
        },
    }


def backup(doc: dict[str, Any] | None = None, **changes: Any) -> Backup:
    values: dict[str, Any] = {
        "id": "ep-20261129T080012Z-abcd1234",
        "at": T0,
        "account": "123456789012",
        "region": "us-east-1",
        "name": "ep",
        "document": document() if doc is None else doc,
    }
    values.update(changes)
    return Backup(**values)


def stored(taken: Backup, doc: dict[str, Any], seal: dict[str, Any] | None) -> Backup:
    """The backup as a store gives it back: its document through JSON."""
    return Backup(
        taken.id, taken.at, taken.account, taken.region, taken.name, json.loads(json.dumps(doc)),
        seal=json.loads(json.dumps(seal)) if seal is not None else None,
    )  # fmt: skip


def test_the_environment_values_of_every_container_are_found() -> None:
    assert environment_values(json.loads(json.dumps(document(), default=str))) == {
        "0/PrimaryContainer": {"API_TOKEN": SECRET, "MODE": "fast"},
        "1/Containers/1": {"DB_PASSWORD": "hunter2"},
    }


def test_in_clear_the_values_stay_and_the_digest_checks_the_whole_backup() -> None:
    taken = backup()
    doc, seal, kept = seal_plain(taken, environment=True)
    assert kept is Kept.CLEAR and seal["environment"] == "clear" and len(seal["digest"]) == 64
    opened = open_plain(stored(taken, doc, seal))
    assert opened.document == json.loads(json.dumps(document(), default=str))
    assert "digest" in opened.check and "damage" in opened.check
    # Any change after it was written: the document, the name, the time.
    changed = copy.deepcopy(doc)
    changed["models"][0]["spec"]["PrimaryContainer"]["Image"] = "evil"
    for bad in (
        stored(taken, changed, seal),
        stored(backup(name="other"), doc, seal),
        stored(backup(at=T0.replace(microsecond=0)), doc, seal),
    ):
        with pytest.raises(BackupRefused, match=f"backup {bad.id}.*digest"):
            open_plain(bad)


def test_names_only_keeps_no_value_and_says_what_cannot_be_restored() -> None:
    taken = backup()
    doc, seal, kept = seal_plain(taken, environment=False)
    assert kept is Kept.NAMES
    text = json.dumps([doc, seal])
    assert SECRET not in text and "hunter2" not in text and "API_TOKEN" in text
    opened = open_plain(stored(taken, doc, seal))
    assert unkept_names(opened.document) == [
        "model solo: API_TOKEN, MODE",
        "model pipeline: DB_PASSWORD",
    ]
    spec = without_unkept(opened.document["models"][0]["spec"])
    assert "Environment" not in spec["PrimaryContainer"]


def test_a_backup_without_environment_values_keeps_none() -> None:
    doc = document()
    for model in doc["models"]:
        for container in [
            model["spec"].get("PrimaryContainer"),
            *model["spec"].get("Containers", []),
        ]:
            if container:
                container.pop("Environment", None)
    assert seal_plain(backup(doc), environment=True)[2] is Kept.NONE


def test_an_envelope_holds_the_digest_and_the_values() -> None:
    taken = backup()
    doc, seal, envelope, kept = seal_envelope(taken, environment=True)
    assert kept is Kept.SEALED and "digest" not in seal
    assert SECRET not in json.dumps(doc) and "API_TOKEN" in json.dumps(doc)
    assert doc["models"][0]["spec"]["PrimaryContainer"]["Environment"] == {
        "API_TOKEN": None,
        "MODE": None,
    }
    opened = open_envelope(stored(taken, doc, seal), envelope)
    assert opened.document == json.loads(json.dumps(document(), default=str))
    # The clear part changed, or the envelope of another backup: refused.
    changed = copy.deepcopy(doc)
    changed["endpoint"]["EndpointConfigName"] = "evil"
    with pytest.raises(BackupRefused, match="digest"):
        open_envelope(stored(taken, changed, seal), envelope)
    _, _, other, _ = seal_envelope(backup(id="another"), environment=True)
    with pytest.raises(BackupRefused, match="digest"):
        open_envelope(stored(taken, doc, seal), other)


def test_the_encryption_context_binds_each_part_to_its_backup() -> None:
    taken = backup()
    assert encryption_context(taken, 0, 2) == {
        "sagesaver-backup": taken.id,
        "sagesaver-endpoint": "ep",
        "sagesaver-region": "us-east-1",
        "sagesaver-part": "1/2",
    }
    data = bytes(range(256)) * 40
    parts = split(data)
    assert all(len(p) <= PART_BYTES for p in parts) and b"".join(parts) == data
    assert split(b"") == [b""]


def test_a_backup_of_an_earlier_version_is_unsealed() -> None:
    old = backup(json.loads(json.dumps(document(), default=str)))  # seal None
    with pytest.raises(Unsealed, match="no seal") as raised:
        open_plain(old)
    assert isinstance(raised.value, InputError)  # exit 2
    opened = open_plain(old, accept_unsealed=True)
    assert opened.warning and "--accept-unsealed" in opened.warning
    assert opened.document == old.document


def test_the_digest_is_the_same_after_a_round_trip_through_json() -> None:
    taken = backup()
    doc, _, _ = seal_plain(taken, environment=True)
    assert digest(taken, doc) == digest(taken, json.loads(json.dumps(doc)))


def test_an_existing_model_is_compared_by_names_where_values_are_not_at_hand() -> None:
    spec = {"ModelName": "m", "PrimaryContainer": {"Image": "i", "Environment": {"A": None}}}
    existing = {"ModelName": "m", "PrimaryContainer": {"Image": "i", "Environment": {"A": "1"}}}
    assert masked_like(existing, spec) == spec
    other = {"ModelName": "m", "PrimaryContainer": {"Image": "i", "Environment": {"B": "1"}}}
    assert masked_like(other, spec) != spec


def test_the_policy_says_how_backups_are_kept() -> None:
    from sagesaver.core.errors import PolicyError
    from sagesaver.core.policy import Policy, parse_policy

    assert Policy().backups.environment is True and Policy().backups.keep_days is None
    chosen = parse_policy("backups: {keep_days: 30, environment: false}\n", "p.yaml")
    assert chosen.backups.keep_days == 30 and chosen.backups.environment is False
    with pytest.raises(PolicyError, match="keep_days"):
        parse_policy("backups: {keep_days: 0}\n", "p.yaml")
