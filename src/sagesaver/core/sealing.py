"""A backup's seal: what of it is kept apart, and how restore knows it is SageSaver's own.

The secrets a backup can hold are its models' containers' ``Environment`` values. A store keeps
them (:class:`Kept`) sealed under the ledger's KMS key (a DynamoDB table under a customer
managed key: only ``restore --apply`` decrypts them), in clear (a SQLite file, or a table
without such a key: the run warns), or not at all (``backups.environment: false``: their names
only). In a stored document a value not kept there is ``None``: the names stay readable.

Every backup carries a digest: SHA-256 over the canonical JSON of the backup (id, time,
account, region, name, and its whole document, values included). Sealed under KMS, the digest
is inside the envelope with the values, each part bound by its encryption context to the
backup's id, endpoint and region: a forger needs the key. Elsewhere it is beside the document:
it detects damage, not forgery (whoever can write the store can write a matching digest).

Pure: the stores encrypt and decrypt (:mod:`sagesaver.ledger.dynamodb`, through
:mod:`sagesaver.aws.kms`).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from sagesaver.core.errors import InputError
from sagesaver.core.formats import utc_iso
from sagesaver.core.records import Backup

SEAL_VERSION = 1
# KMS Encrypt takes at most 4 KB of plaintext: a larger envelope is sealed in parts.
PART_BYTES = 4096
# The encryption context of each part; the key policy lets the key be used directly only with
# these keys (``kms:EncryptionContext:sagesaver-backup`` present, no other prefix).
CONTEXT_PREFIX = "sagesaver-"
CONTEXT_BACKUP = "sagesaver-backup"
CONTEXT_ENDPOINT = "sagesaver-endpoint"
CONTEXT_REGION = "sagesaver-region"
CONTEXT_PART = "sagesaver-part"


class Kept(str, Enum):
    """How a backup's environment values are kept."""

    SEALED = "sealed"  # encrypted under the ledger's KMS key: restore --apply decrypts them
    CLEAR = "clear"  # in the document as they are: the store has no key to seal them with
    NAMES = "names-only"  # not kept (backups.environment: false): their names only
    NONE = "none"  # the backup has no environment values


class BackupRefused(InputError):
    """A backup restore must not act on: its seal is missing or does not verify."""


class Unsealed(BackupRefused):
    """A backup whose seal the ledger cannot vouch for (written by an earlier version, or a
    digest where the ledger seals under its key): restored only when asked for."""


@dataclass(frozen=True)
class Opened:
    """A backup as restore may use it: its document (the values filled in when they were
    decrypted; ``None`` where they are not at hand), what was checked, one line, what cannot be
    restored (``notes``), and a warning when it was accepted unchecked."""

    document: dict[str, Any]
    check: str
    notes: list[str] = field(default_factory=list)
    warning: str | None = None


def canonical(value: Any) -> bytes:
    """The one JSON text of ``value``: keys sorted, no spaces, UTF-8."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return text.encode("utf-8")


def normalized(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` as a store gives it back (times as text): what the digest is over."""
    result: dict[str, Any] = json.loads(json.dumps(document, default=str))
    return result


def _spec_containers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The containers of one model's spec, each with where it is in the spec."""
    if isinstance(spec.get("PrimaryContainer"), dict):
        yield "PrimaryContainer", spec["PrimaryContainer"]
    for index, container in enumerate(spec.get("Containers") or []):
        if isinstance(container, dict):
            yield f"Containers/{index}", container


def _containers(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every container of the backup's models: (path, model name, container)."""
    for index, model in enumerate(document.get("models") or []):
        spec = model.get("spec") or {}
        for where, container in _spec_containers(spec):
            yield f"{index}/{where}", str(spec.get("ModelName", "?")), container


def environment_values(document: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The environment values the document holds, by container path (none: no entry)."""
    found: dict[str, dict[str, str]] = {}
    for path, _, container in _containers(document):
        env = container.get("Environment") or {}
        values = {k: v for k, v in env.items() if v is not None}
        if values:
            found[path] = values
    return found


def without_values(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` whose environment maps keep their names, not their values."""
    result = copy.deepcopy(document)
    for _, _, container in _containers(result):
        if container.get("Environment"):
            container["Environment"] = dict.fromkeys(container["Environment"])
    return result


def _with_values(
    backup: Backup, document: dict[str, Any], values: dict[str, dict[str, str]]
) -> dict[str, Any]:
    """A copy of ``document`` with ``values`` put back. Names that differ: refused."""
    result = copy.deepcopy(document)
    left = dict(values)
    for path, _, container in _containers(result):
        env = container.get("Environment")
        if path not in left:
            continue
        filled = left.pop(path)
        if not isinstance(env, dict) or set(env) != set(filled):
            raise BackupRefused(
                f"backup {backup.id}: its sealed environment does not match its document"
            )
        container["Environment"] = filled
    if left:
        raise BackupRefused(
            f"backup {backup.id}: its sealed environment names containers it does not have"
        )
    return result


def _unkept(document: dict[str, Any]) -> dict[str, list[str]]:
    """By model, the environment variables whose values are not at hand."""
    by_model: dict[str, list[str]] = {}
    for _, model, container in _containers(document):
        env = container.get("Environment") or {}
        names = [name for name, value in env.items() if value is None]
        if names:
            by_model.setdefault(model, []).extend(names)
    return by_model


def unkept_names(document: dict[str, Any]) -> list[str]:
    """``model NAME: VAR, VAR`` for each model whose environment values are not at hand."""
    return [f"model {model}: {', '.join(names)}" for model, names in _unkept(document).items()]


def environment_names(spec: dict[str, Any]) -> list[str]:
    """The environment variable names of one model's containers (never their values)."""
    names: list[str] = []
    for _, container in _spec_containers(spec):
        names += [n for n in (container.get("Environment") or {}) if n not in names]
    return names


def without_unkept(spec: dict[str, Any]) -> dict[str, Any]:
    """A model's spec as CreateModel takes it: the variables whose values were not kept left
    out (an environment left empty is left out)."""
    result = copy.deepcopy(spec)
    for _, container in _spec_containers(result):
        env = container.get("Environment")
        if isinstance(env, dict):
            kept = {k: v for k, v in env.items() if v is not None}
            if kept:
                container["Environment"] = kept
            else:
                container.pop("Environment")
    return result


def masked_like(existing: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """``existing`` (a model as described now) with its environment values hidden where the
    backup's ``spec`` has none at hand, so the two compare by names there."""
    result = copy.deepcopy(existing)
    ours = dict(_spec_containers(spec))
    for where, container in _spec_containers(result):
        wanted = (ours.get(where) or {}).get("Environment") or {}
        env = container.get("Environment")
        if isinstance(env, dict) and wanted and all(v is None for v in wanted.values()):
            container["Environment"] = dict.fromkeys(env)
    return result


def digest(backup: Backup, document: dict[str, Any]) -> str:
    """SHA-256 (hex) of the backup as restore would use it: its id, time, account, region,
    name and ``document``."""
    whole = {
        "id": backup.id,
        "at": utc_iso(backup.at),
        "account": backup.account,
        "region": backup.region,
        "name": backup.name,
        "document": document,
    }
    return hashlib.sha256(canonical(whole)).hexdigest()


def encryption_context(backup: Backup, part: int, parts: int) -> dict[str, str]:
    """The encryption context of part ``part`` (from 0) of ``parts`` of a backup's envelope:
    a part opens only as that part of that backup."""
    return {
        CONTEXT_BACKUP: backup.id,
        CONTEXT_ENDPOINT: backup.name,
        CONTEXT_REGION: backup.region,
        CONTEXT_PART: f"{part + 1}/{parts}",
    }


def split(data: bytes) -> list[bytes]:
    """``data`` in parts KMS Encrypt takes (at least one)."""
    return [data[i : i + PART_BYTES] for i in range(0, len(data), PART_BYTES)] or [b""]


def _kept(values: dict[str, dict[str, str]], environment: bool, sealed: bool) -> Kept:
    if not values:
        return Kept.NONE
    if not environment:
        return Kept.NAMES
    return Kept.SEALED if sealed else Kept.CLEAR


def seal_plain(backup: Backup, environment: bool) -> tuple[dict[str, Any], dict[str, Any], Kept]:
    """For a store without a key: the document to store (its values in clear, or names only
    unless ``environment``), its seal (a digest beside it) and how the values are kept."""
    document = normalized(backup.document)
    values = environment_values(document)
    if not environment:
        document = without_values(document)
    kept = _kept(values, environment, sealed=False)
    seal = {"version": SEAL_VERSION, "environment": kept.value, "digest": digest(backup, document)}
    return document, seal, kept


def seal_envelope(
    backup: Backup, environment: bool
) -> tuple[dict[str, Any], dict[str, Any], bytes, Kept]:
    """For a store with a key: the document to store (names only), its seal (without the
    encrypted parts, which the store adds under ``kms``), the envelope to encrypt (the digest
    and the values) and how the values are kept."""
    document = normalized(backup.document)
    values = environment_values(document)
    kept = _kept(values, environment, sealed=True)
    full = document if environment else without_values(document)
    sealed = values if environment else {}
    envelope = canonical({"digest": digest(backup, full), "environment": sealed})
    seal = {"version": SEAL_VERSION, "environment": kept.value}
    return without_values(document), seal, envelope, kept


def _notes(document: dict[str, Any], seal: dict[str, Any]) -> list[str]:
    """What restore cannot set: the variables whose values were not kept."""
    if seal.get("environment") != Kept.NAMES.value:
        return []
    return [
        f"model {model}: environment values not kept (backups.environment: false), so not "
        f"restored: {', '.join(names)}"
        for model, names in _unkept(document).items()
    ]


def no_seal(backup: Backup, why: str) -> Unsealed:
    """The refusal of a backup without a seal this ledger vouches for."""
    return Unsealed(
        f"backup {backup.id} of {backup.name} ({backup.region}) {why}: its contents cannot be "
        "checked; restore it anyway with --accept-unsealed, once you have read its dry run"
    )


def _accepted(backup: Backup, why: str) -> str:
    """The warning of a backup restored unchecked."""
    return (
        f"backup {backup.id} of {backup.name} ({backup.region}) {why}: accepted unchecked "
        "(--accept-unsealed)"
    )


def open_plain(backup: Backup, accept_unsealed: bool = False, why: str = "") -> Opened:
    """The backup of a store without a key, its digest checked (``why``: the reason a seal
    beside the document is not enough here, when it is not). Raises :class:`BackupRefused`
    when the digest does not match, :class:`Unsealed` when there is none (or ``why``) unless
    ``accept_unsealed``."""
    seal = backup.seal
    document = backup.document
    if seal is None or "digest" not in seal:
        if seal is not None and "kms" in seal:
            raise BackupRefused(
                f"backup {backup.id} of {backup.name} is sealed under KMS key "
                f"{seal['kms'].get('key')}, which this ledger does not hold: it was not "
                "written here"
            )
        unsealed = "has no seal (written by an earlier SageSaver)"
        if not accept_unsealed:
            raise no_seal(backup, unsealed)
        warning = _accepted(backup, unsealed)
        return Opened(document, "seal: none (accepted with --accept-unsealed)", [], warning)
    if digest(backup, document) != seal["digest"]:
        raise BackupRefused(
            f"backup {backup.id} of {backup.name} ({backup.region}) does not match its digest: "
            "it was changed after SageSaver wrote it (or damaged); nothing was created"
        )
    notes = _notes(document, seal)
    if why:
        if not accept_unsealed:
            raise no_seal(backup, why)
        check = "seal: digest only (accepted with --accept-unsealed)"
        return Opened(document, check, notes, _accepted(backup, why))
    check = (
        "seal: digest verified (a digest beside the backup detects damage, not forgery: "
        "whoever can write this ledger could write a matching one)"
    )
    return Opened(document, check, notes)


def open_envelope(backup: Backup, plaintext: bytes) -> Opened:
    """The backup whose envelope was decrypted (``plaintext``): its values put back and its
    digest checked. Raises :class:`BackupRefused` when they do not match."""
    try:
        envelope = json.loads(plaintext)
        values = envelope["environment"]
        sealed_digest = envelope["digest"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupRefused(f"backup {backup.id}: its envelope is not SageSaver's") from exc
    if not isinstance(values, dict) or not isinstance(sealed_digest, str):
        raise BackupRefused(f"backup {backup.id}: its envelope is not SageSaver's")
    seal = backup.seal or {}
    document = _with_values(backup, backup.document, values)
    if digest(backup, document) != sealed_digest:
        raise BackupRefused(
            f"backup {backup.id} of {backup.name} ({backup.region}) does not match the digest "
            "sealed with it: it was changed after SageSaver wrote it; nothing was created"
        )
    key = (seal.get("kms") or {}).get("key", "?")
    check = f"seal: envelope and digest verified (KMS key {key})"
    return Opened(document, check, _notes(document, seal))


def sealed_unopened(backup: Backup) -> Opened:
    """A backup sealed under KMS, in a dry run: nothing decrypted, nothing checked yet."""
    seal = backup.seal or {}
    key = (seal.get("kms") or {}).get("key", "?")
    check = (
        f"seal: under KMS key {key}; restore --apply decrypts it and checks its digest before "
        "creating anything"
    )
    return Opened(backup.document, check, _notes(backup.document, seal))
