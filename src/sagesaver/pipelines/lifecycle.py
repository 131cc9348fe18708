"""``lifecycle install``: create or update the auto-stop configuration in each region, then
attach it to the notebook instances the filters select (restarting them with ``restart``).

One region's or instance's failure is recorded and the others go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sagesaver.aws import inventory, tags
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.lifecycle import attach as attach_config
from sagesaver.aws.lifecycle import ensure_config, notebook_state
from sagesaver.aws.session import Aws
from sagesaver.core.lifecycle import plan_attach
from sagesaver.core.model import ScanError
from sagesaver.core.policy import Policy
from sagesaver.render.scan import error_dict


@dataclass
class InstallResult:
    """The configuration in each region and what became of each selected instance."""

    name: str
    apply: bool
    configurations: list[dict[str, Any]] = field(default_factory=list)
    instances: list[dict[str, Any]] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """The JSON document of the run."""
        return {
            "dry_run": not self.apply,
            "configurations": self.configurations,
            "instances": self.instances,
            "errors": [error_dict(e) for e in self.errors],
        }


def install_lifecycle(
    aws: Aws,
    regions: Sequence[str],
    policy: Policy,
    name: str,
    content: str,
    attach: Sequence[str],
    filters: dict[str, str],
    restart: bool,
    restart_timeout: int,
    apply: bool,
) -> InstallResult:
    """Create or update ``name`` with ``content`` and attach it where the filters say."""
    result = InstallResult(name=name, apply=apply)
    for region in regions:
        try:
            outcome = ensure_config(aws, region, name, content, apply)
        except AWS_ERRORS as exc:
            result.errors.append(scan_error(exc, region, "CreateOrUpdateLifecycleConfig", name))
            continue
        result.configurations.append(
            {"region": region, "name": name, "action": outcome.action, "applied": outcome.applied}
        )
        if not (attach or filters):
            continue
        listing = tags.list_with_tags(
            aws, region, inventory.list_notebook_instances, tags.NOTEBOOK_TYPE, result.errors
        )
        if not listing.tags_read:
            continue  # the protect tag is unknown: attach nothing in this region
        planned = plan_attach(
            listing.tagged, list(attach), filters, name, restart, policy.notebooks.protect_tag
        )
        for item in planned:
            done = "dry run" if item.action != "skip" else item.reason
            final = item.instance.status
            if apply and item.action != "skip":
                done, error = attach_config(aws, item.instance, name, restart, restart_timeout)
                if error is not None:
                    result.errors.append(error)
                final = notebook_state(aws, region, item.instance.name)
            result.instances.append(
                {
                    "name": item.instance.name,
                    "region": region,
                    "state": item.instance.status,
                    "action": item.action,
                    "reason": item.reason,
                    "result": done,
                    "final_state": final,
                }
            )
    return result
