"""A step as a Vertex AI custom job, built with the real ``google.cloud.aiplatform_v1`` types:
one worker pool of one replica running the step's image with the worker's command, an
``n1-standard`` machine that fits the step's resources (or the configured one) and its GPUs as
accelerators. Submitted with ``JobServiceClient.create_custom_job`` and followed with
``get_custom_job``. A custom job cannot take environment values from Secret Manager, so the
credentials travel as a reference: ``GRISTMILL_SECRETS_FROM`` names a Secret Manager version
and ``secret_env`` reads it in the container."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError, did_you_mean
from gristmill.step_operators import _cloud
from gristmill.step_operators.base import JobStatus, StepJob, StepOperator

if TYPE_CHECKING:
    from google.cloud.aiplatform_v1 import CustomJob

# n1-standard-N: N vCPUs and 3.75 GB per vCPU; the family GPUs attach to.
N1_STANDARD_CORES = (2, 4, 8, 16, 32, 64, 96)
_ENDED = {
    "JOB_STATE_SUCCEEDED": "succeeded",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_CANCELLED": "failed",
    "JOB_STATE_EXPIRED": "failed",
}


def machine_type_for(cpu: float | None, memory_gb: float | None) -> str:
    for cores in N1_STANDARD_CORES:
        if (cpu or 0) <= cores and (memory_gb or 0) <= cores * 3.75:
            return f"n1-standard-{cores}"
    raise ConfigError(
        f"no n1-standard machine fits cpu={cpu}, memory={memory_gb} GB: set machine_type=... on "
        "the vertex step operator"
    )


class VertexStepOperator(StepOperator):
    flavor = "vertex"
    config_model = "gristmill.step_operators.cloud_configs:VertexStepOperatorConfig"
    requires = ("google.cloud.aiplatform_v1",)
    extra = "vertex"
    secret_fields = ("service_account_key",)
    poll_seconds = 15.0

    def __init__(
        self,
        *,
        project: str,
        location: str = "us-central1",
        machine_type: str | None = None,
        accelerator_type: str = "NVIDIA_TESLA_T4",
        boot_disk_size_gb: int = 100,
        service_account: str | None = None,
        service_account_key: str | None = None,
        secret_version: str | None = None,
        image: str | None = None,
    ) -> None:
        self.project = project
        self.location = location
        self.machine_type = machine_type
        self.accelerator_type = accelerator_type
        self.boot_disk_size_gb = boot_disk_size_gb
        self.service_account = service_account
        self._service_account_key = service_account_key
        self.secret_version = secret_version
        self.image = image

    def build_request(self, job: StepJob) -> CustomJob:
        """The ``CustomJob`` for one step."""
        from google.cloud import aiplatform_v1 as vertex

        prepared = _cloud.prepare_job(
            job,
            flavor=self.flavor,
            default_image=self.image,
            secrets=self.secret_version,
            fix="keep them in a Secret Manager secret (a JSON object of these variables) and "
            "set secret_version=projects/P/secrets/S/versions/latest",
            secrets_by_reference=True,
        )
        resources = prepared.resources
        command = prepared.command
        memory_gb = None if resources.memory_bytes is None else resources.memory_bytes / 1e9
        machine = vertex.MachineSpec(
            machine_type=self.machine_type or machine_type_for(resources.cpu, memory_gb)
        )
        if resources.gpu:
            machine.accelerator_type = self._accelerator(vertex)
            machine.accelerator_count = resources.gpu
        pool = vertex.WorkerPoolSpec(
            container_spec=vertex.ContainerSpec(
                image_uri=prepared.image,
                command=command[:1],
                args=command[1:],
                env=[
                    vertex.EnvVar(name=k, value=v) for k, v in sorted(prepared.environment.items())
                ],
            ),
            machine_spec=machine,
            replica_count=1,
            disk_spec=vertex.DiskSpec(boot_disk_size_gb=self.boot_disk_size_gb),
        )
        spec = vertex.CustomJobSpec(worker_pool_specs=[pool])
        if self.service_account:
            spec.service_account = self.service_account
        return vertex.CustomJob(
            display_name=_cloud.job_name(job, max_length=128),
            job_spec=spec,
            labels={
                "gristmill-run-id": _cloud.label_value(job.run_id),
                "gristmill-step": _cloud.label_value(job.step_id),
                "gristmill-step-run-id": _cloud.label_value(job.step_run_id),
            },
        )

    def _accelerator(self, vertex: Any) -> Any:
        names = [a.name for a in vertex.AcceleratorType]
        if self.accelerator_type not in names:
            raise ConfigError(
                f"the vertex step operator's accelerator_type '{self.accelerator_type}' is not a "
                f"Vertex AI accelerator{did_you_mean(self.accelerator_type, names)}"
            )
        return vertex.AcceleratorType[self.accelerator_type]

    def _submit(self, job: StepJob) -> _cloud.Submitted:
        _cloud.check_reachable_store(job, "the vertex step operator")
        return self._submit_with(self._client(), job)

    def _submit_with(self, client: Any, job: StepJob) -> _cloud.Submitted:
        created = client.create_custom_job(
            parent=f"projects/{self.project}/locations/{self.location}",
            custom_job=self.build_request(job),
        )
        return _cloud.Submitted(client, created.name)

    def _status(self, handle: _cloud.Submitted) -> JobStatus:
        found = handle.client.get_custom_job(name=handle.id)
        state = _ENDED.get(found.state.name, "running")
        if state == "failed":
            reason = found.error.message or found.state.name
            return JobStatus("failed", f"Vertex AI custom job {handle.id}: {reason}")
        return JobStatus(state)

    def _cancel(self, handle: _cloud.Submitted) -> None:
        handle.client.cancel_custom_job(name=handle.id)

    def _explain(self, error: Exception) -> tuple[str, str] | None:
        return _cloud.explain_google(error, project=self.project, location=self.location)

    def _client(self) -> Any:
        from google.cloud import aiplatform_v1 as vertex

        credentials = None
        if self._service_account_key:
            from google.oauth2 import service_account

            credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                json.loads(self._service_account_key)
            )
        return vertex.JobServiceClient(
            credentials=credentials,
            client_options={"api_endpoint": f"{self.location}-aiplatform.googleapis.com"},
        )
