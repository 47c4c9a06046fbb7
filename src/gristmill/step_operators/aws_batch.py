"""A step as an AWS Batch job (``SubmitJob``): the worker's command, environment and resources
(``VCPU``, ``MEMORY`` in MiB, ``GPU``) as container overrides, on a job definition for the
step's image that the operator registers once (named by a digest of its properties, so an
identical one is found with ``DescribeJobDefinitions`` and reused). The credentials come from
Secrets Manager through the job definition's own ``secrets`` (Batch puts them in the
container's environment; they are never in a request). Followed with ``DescribeJobs``."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from gristmill.step_operators import _cloud
from gristmill.step_operators.base import JobStatus, StepJob

_ENDED = {"SUCCEEDED": "succeeded", "FAILED": "failed"}


class AWSBatchStepOperator(_cloud.AWSStepOperator):
    flavor = "aws_batch"
    config_model = "gristmill.step_operators.cloud_configs:AWSBatchStepOperatorConfig"
    extra = "aws_batch"
    service = "batch"

    def __init__(
        self,
        *,
        job_queue: str,
        platform: str = "EC2",
        job_role_arn: str | None = None,
        execution_role_arn: str | None = None,
        timeout_seconds: int | None = None,
        **aws: Any,
    ) -> None:
        super().__init__(**aws)
        self.job_queue = job_queue
        self.platform = platform
        self.job_role_arn = job_role_arn
        self.execution_role_arn = execution_role_arn
        self.timeout_seconds = timeout_seconds

    def _prepare(self, job: StepJob) -> _cloud.PreparedJob:
        # The credentials come from the job definition's ``secrets``, never the request.
        return _cloud.prepare_job(
            job,
            flavor=self.flavor,
            default_image=self.image,
            secrets=self.secrets_arn,
            fix=_cloud.AWS_SECRETS_FIX,
        )

    def job_definition_request(self, job: StepJob) -> dict[str, Any]:
        """The ``RegisterJobDefinition`` parameters for the step's image (and the secrets)."""
        prepared = self._prepare(job)
        image = prepared.image
        properties: dict[str, Any] = {
            "image": image,
            "command": prepared.command[:1],  # always overridden by SubmitJob
            # Defaults for a step without resources; SubmitJob overrides them per step.
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "2048"},
            ],
        }
        if self.secrets_arn is not None:
            names = dict.fromkeys([_cloud.SECRETS_KEY_VARIABLE, *prepared.hidden])
            # ARN:json-key:: takes one key of the secret's JSON (its current version).
            properties["secrets"] = [
                {"name": name, "valueFrom": f"{self.secrets_arn}:{name}::"} for name in names
            ]
        if self.job_role_arn:
            properties["jobRoleArn"] = self.job_role_arn
        if self.execution_role_arn:
            properties["executionRoleArn"] = self.execution_role_arn
        digest = hashlib.sha256(
            json.dumps([self.platform, properties], sort_keys=True).encode()
        ).hexdigest()[:16]
        return {
            "jobDefinitionName": f"gristmill-{digest}",
            "type": "container",
            "platformCapabilities": [self.platform],
            "containerProperties": properties,
            "tags": {"gristmill:image": image[:256]},
        }

    def build_request(self, job: StepJob, *, job_definition: str | None = None) -> dict[str, Any]:
        """The ``SubmitJob`` parameters for one step (on the job definition registered for it,
        by name unless ``job_definition`` gives its ARN)."""
        definition = self.job_definition_request(job)
        prepared = self._prepare(job)
        resources = prepared.resources
        requirements = []
        if resources.cpu is not None:
            requirements.append({"type": "VCPU", "value": _number(resources.cpu)})
        memory = _cloud.memory_mib(resources)
        if memory is not None:
            requirements.append({"type": "MEMORY", "value": str(memory)})
        if resources.gpu:
            requirements.append({"type": "GPU", "value": str(resources.gpu)})
        request: dict[str, Any] = {
            "jobName": _cloud.job_name(job, max_length=128),
            "jobQueue": self.job_queue,
            "jobDefinition": job_definition or definition["jobDefinitionName"],
            "containerOverrides": {
                "command": prepared.command,
                "environment": [
                    {"name": k, "value": v} for k, v in sorted(prepared.environment.items())
                ],
                **({"resourceRequirements": requirements} if requirements else {}),
            },
            "retryStrategy": {"attempts": 1},  # gristmill's retries do the retrying
            "tags": {
                "gristmill:run-id": job.run_id,
                "gristmill:step": job.step_id[:256],
                "gristmill:step-run-id": job.step_run_id,
            },
            "propagateTags": True,
        }
        if self.timeout_seconds is not None:
            request["timeout"] = {"attemptDurationSeconds": self.timeout_seconds}
        return request

    def _submit(self, job: StepJob) -> _cloud.Submitted:
        _cloud.check_reachable_store(job, "the aws_batch step operator")
        return self._submit_with(self._client(), job)

    def _submit_with(self, client: Any, job: StepJob) -> _cloud.Submitted:
        definition = self.job_definition_request(job)
        found = client.describe_job_definitions(
            jobDefinitionName=definition["jobDefinitionName"], status="ACTIVE"
        )["jobDefinitions"]
        if found:
            arn = max(found, key=lambda d: d["revision"])["jobDefinitionArn"]
        else:
            arn = client.register_job_definition(**definition)["jobDefinitionArn"]
        submitted = client.submit_job(**self.build_request(job, job_definition=arn))
        return _cloud.Submitted(client, submitted["jobId"])

    def _status(self, handle: _cloud.Submitted) -> JobStatus:
        jobs = handle.client.describe_jobs(jobs=[handle.id])["jobs"]
        if not jobs:
            return JobStatus("failed", f"AWS Batch no longer knows job {handle.id}")
        state = _ENDED.get(jobs[0]["status"], "running")
        if state == "failed":
            reason = jobs[0].get("statusReason") or "failed"
            return JobStatus("failed", f"AWS Batch job {handle.id}: {reason}")
        return JobStatus(state)

    def _cancel(self, handle: _cloud.Submitted) -> None:
        handle.client.terminate_job(jobId=handle.id, reason="the gristmill run was stopped")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
