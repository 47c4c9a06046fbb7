"""A step as a SageMaker training job (``CreateTrainingJob``): the step's image as the training
image, the worker's command as its entrypoint, an instance type that fits the step's resources
(or the configured one), followed with ``DescribeTrainingJob``. A training job has no way to
take environment values from Secrets Manager, so the credentials travel as a reference:
``GRISTMILL_SECRETS_FROM`` names the secret and ``secret_env`` reads it in the container."""

from __future__ import annotations

from typing import Any

from gristmill.errors import ConfigError
from gristmill.step_operators import _cloud
from gristmill.step_operators.base import JobStatus, StepJob

# (instance type, vCPUs, memory GiB, GPUs), smallest first within each family.
INSTANCE_TYPES: tuple[tuple[str, int, int, int], ...] = (
    ("ml.m5.large", 2, 8, 0),
    ("ml.m5.xlarge", 4, 16, 0),
    ("ml.m5.2xlarge", 8, 32, 0),
    ("ml.m5.4xlarge", 16, 64, 0),
    ("ml.m5.12xlarge", 48, 192, 0),
    ("ml.m5.24xlarge", 96, 384, 0),
    ("ml.g5.xlarge", 4, 16, 1),
    ("ml.g5.2xlarge", 8, 32, 1),
    ("ml.g5.4xlarge", 16, 64, 1),
    ("ml.g5.8xlarge", 32, 128, 1),
    ("ml.g5.12xlarge", 48, 192, 4),
    ("ml.g5.48xlarge", 192, 768, 8),
)

_ENDED = {"Completed": "succeeded", "Failed": "failed", "Stopped": "failed"}


def instance_type_for(cpu: float | None, memory_gib: float | None, gpu: int | None) -> str:
    """The smallest instance type of the table that has the cores, memory and GPUs asked for."""
    for name, cores, memory, gpus in INSTANCE_TYPES:
        if (cpu or 0) <= cores and (memory_gib or 0) <= memory and (gpu or 0) <= gpus:
            if (gpu or 0) == 0 and gpus:
                continue  # never a GPU instance for a step that asked for none
            return name
    raise ConfigError(
        f"no SageMaker instance type in gristmill's table fits cpu={cpu}, memory={memory_gib} GiB, "
        f"gpu={gpu}: set instance_type=... on the sagemaker step operator"
    )


class SageMakerStepOperator(_cloud.AWSStepOperator):
    flavor = "sagemaker"
    config_model = "gristmill.step_operators.cloud_configs:SageMakerStepOperatorConfig"
    extra = "sagemaker"
    service = "sagemaker"

    def __init__(
        self,
        *,
        role_arn: str,
        output_path: str,
        instance_type: str | None = None,
        volume_size_gb: int = 30,
        max_runtime_seconds: int = 86400,
        **aws: Any,
    ) -> None:
        super().__init__(**aws)
        self.role_arn = role_arn
        self.output_path = output_path
        self.instance_type = instance_type
        self.volume_size_gb = volume_size_gb
        self.max_runtime_seconds = max_runtime_seconds

    def build_request(self, job: StepJob) -> dict[str, Any]:
        """The ``CreateTrainingJob`` parameters for one step."""
        prepared = _cloud.prepare_job(
            job,
            flavor=self.flavor,
            default_image=self.image,
            secrets=self.secrets_arn,
            fix=_cloud.AWS_SECRETS_FIX,
            secrets_by_reference=True,
        )
        resources = prepared.resources
        command = prepared.command
        instance_type = self.instance_type or instance_type_for(
            resources.cpu, _cloud.memory_gib(resources), resources.gpu
        )
        return {
            "TrainingJobName": _cloud.job_name(job, max_length=63),
            "AlgorithmSpecification": {
                "TrainingImage": prepared.image,
                "TrainingInputMode": "File",
                "ContainerEntrypoint": command[:1],
                "ContainerArguments": command[1:],
            },
            "RoleArn": self.role_arn,
            "OutputDataConfig": {"S3OutputPath": self.output_path},
            "ResourceConfig": {
                "InstanceType": instance_type,
                "InstanceCount": 1,
                "VolumeSizeInGB": self.volume_size_gb,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": self.max_runtime_seconds},
            "Environment": prepared.environment,
            "Tags": [
                {"Key": "gristmill:run-id", "Value": job.run_id},
                {"Key": "gristmill:step", "Value": job.step_id},
                {"Key": "gristmill:step-run-id", "Value": job.step_run_id},
            ],
        }

    def _submit(self, job: StepJob) -> _cloud.Submitted:
        _cloud.check_reachable_store(job, "the sagemaker step operator")
        return self._submit_with(self._client(), job)

    def _submit_with(self, client: Any, job: StepJob) -> _cloud.Submitted:
        request = self.build_request(job)
        client.create_training_job(**request)
        return _cloud.Submitted(client, request["TrainingJobName"])

    def _status(self, handle: _cloud.Submitted) -> JobStatus:
        found = handle.client.describe_training_job(TrainingJobName=handle.id)
        state = _ENDED.get(found["TrainingJobStatus"], "running")
        if state == "failed":
            reason = found.get("FailureReason") or found["TrainingJobStatus"].lower()
            return JobStatus("failed", f"SageMaker training job {handle.id}: {reason}")
        return JobStatus(state)

    def _cancel(self, handle: _cloud.Submitted) -> None:
        handle.client.stop_training_job(TrainingJobName=handle.id)
