"""Test-only extension of moto's SageMaker service.

moto 5.2 lacks two operations SageSaver calls: ``UpdateNotebookInstance`` (to attach a lifecycle
configuration) and ``UpdateNotebookInstanceLifecycleConfig``. This module adds them to moto's
response class for the duration of a test, with the rules of the real API that matter here:
an instance can only be updated while ``Stopped``, and both it and the configuration must exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from moto.core.responses import ActionResult, EmptyResult
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.responses import SageMakerResponse


def _update_notebook_instance(self: SageMakerResponse) -> ActionResult:
    backend = self.sagemaker_backend
    name = self._get_param("NotebookInstanceName")
    config = self._get_param("LifecycleConfigName")
    instance = backend.notebook_instances.get(name)
    if instance is None:
        raise ValidationError(message=f"RecordNotFound: notebook instance {name} does not exist")
    if instance.status != "Stopped":
        raise ValidationError(
            message=f"Status ({instance.status}) not in ([Stopped]). Unable to transition to "
            "(Updating) for Notebook Instance"
        )
    if config and config not in backend.notebook_instance_lifecycle_configurations:
        raise ValidationError(message=f"Notebook Instance Lifecycle Config {config} does not exist")
    if self._get_param("DisassociateLifecycleConfig"):
        config = None
    if config is not None or self._get_param("DisassociateLifecycleConfig"):
        instance.lifecycle_config_name = config
    return EmptyResult()


def _update_notebook_instance_lifecycle_config(self: SageMakerResponse) -> ActionResult:
    backend = self.sagemaker_backend
    name = self._get_param("NotebookInstanceLifecycleConfigName")
    config = backend.notebook_instance_lifecycle_configurations.get(name)
    if config is None:
        raise ValidationError(
            message=f"Unable to describe Notebook Instance Lifecycle Config {name}"
        )
    if self._get_param("OnStart") is not None:
        config.on_start = self._get_param("OnStart")
    if self._get_param("OnCreate") is not None:
        config.on_create = self._get_param("OnCreate")
    return EmptyResult()


EXTENSIONS = {
    "update_notebook_instance": _update_notebook_instance,
    "update_notebook_instance_lifecycle_config": _update_notebook_instance_lifecycle_config,
}


@contextmanager
def sagemaker_update_operations() -> Iterator[None]:
    """Add the missing operations to moto while the block runs."""
    missing = [name for name in EXTENSIONS if not hasattr(SageMakerResponse, name)]
    for name in missing:
        setattr(SageMakerResponse, name, EXTENSIONS[name])
    try:
        yield
    finally:
        for name in missing:
            delattr(SageMakerResponse, name)
