"""A step as a Kubernetes Job, built with the ``kubernetes`` client's own models: the image,
the worker's command and environment (the secrets key from a Kubernetes Secret, never in the
manifest), resource requests and limits (``nvidia.com/gpu`` for GPUs), labels with the run and
step ids, and ``backoff_limit=0`` (gristmill's retries do the retrying). Submitted with
``BatchV1Api.create_namespaced_job`` and followed with ``read_namespaced_job_status`` through
the configured kubeconfig/context, or the pod's service account inside a cluster."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError
from gristmill.options import Resources
from gristmill.step_operators import _cloud
from gristmill.step_operators.base import JobStatus, StepJob, StepOperator

if TYPE_CHECKING:
    from kubernetes.client import BatchV1Api, V1Job

GPU_RESOURCE = "nvidia.com/gpu"
LABEL_PREFIX = "gristmill.io"


class KubernetesStepOperator(StepOperator):
    flavor = "kubernetes"
    config_model = "gristmill.step_operators.cloud_configs:KubernetesStepOperatorConfig"
    requires = ("kubernetes",)
    extra = "kubernetes"
    poll_seconds = 5.0

    def __init__(
        self,
        *,
        namespace: str = "default",
        context: str | None = None,
        kubeconfig: str | None = None,
        service_account: str | None = None,
        image_pull_secret: str | None = None,
        secret_name: str | None = None,
        image: str | None = None,
    ) -> None:
        self.namespace = namespace
        self.context = context
        self.kubeconfig = kubeconfig
        self.service_account = service_account
        self.image_pull_secret = image_pull_secret
        self.secret_name = secret_name
        self.image = image

    def build_request(self, job: StepJob) -> V1Job:
        """The Job for one step (``generate_name``: the API server makes each name unique)."""
        from kubernetes import client

        prepared = _cloud.prepare_job(
            job,
            flavor=self.flavor,
            default_image=self.image,
            secrets=self.secret_name,
            fix="keep them in a Kubernetes Secret (kubectl create secret generic gristmill "
            "--from-literal=NAME=...) and set secret_name=gristmill",
        )
        image = prepared.image
        env = [client.V1EnvVar(name=k, value=v) for k, v in sorted(prepared.environment.items())]
        if self.secret_name:
            # The secrets key is taken from the Secret whenever it has one (optional: a stack
            # without secrets needs none); a store URL with a password, or a gristmill
            # server's API token, must be there.
            wanted = dict.fromkeys([_cloud.SECRETS_KEY_VARIABLE, *prepared.hidden])
            for name in wanted:
                env.append(
                    client.V1EnvVar(
                        name=name,
                        value_from=client.V1EnvVarSource(
                            secret_key_ref=client.V1SecretKeySelector(
                                name=self.secret_name,
                                key=name,
                                optional=name == _cloud.SECRETS_KEY_VARIABLE,
                            )
                        ),
                    )
                )
        labels = {
            f"{LABEL_PREFIX}/run-id": _cloud.label_value(job.run_id),
            f"{LABEL_PREFIX}/step": _cloud.label_value(job.step_id),
            f"{LABEL_PREFIX}/step-run-id": _cloud.label_value(job.step_run_id),
        }
        container = client.V1Container(
            name="step",
            image=image,
            command=prepared.command,
            env=env,
            resources=_resource_requirements(prepared.resources),
        )
        pod = client.V1PodSpec(
            containers=[container],
            restart_policy="Never",
            service_account_name=self.service_account,
            image_pull_secrets=[client.V1LocalObjectReference(name=self.image_pull_secret)]
            if self.image_pull_secret
            else None,
        )
        return client.V1Job(
            api_version="batch/v1",
            kind="Job",
            metadata=client.V1ObjectMeta(
                generate_name=_cloud.job_name(job, max_length=52, unique=False) + "-",
                namespace=self.namespace,
                labels=labels,
                annotations={f"{LABEL_PREFIX}/run-name": job.run_name},
            ),
            spec=client.V1JobSpec(
                backoff_limit=0,
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels), spec=pod
                ),
            ),
        )

    def _submit(self, job: StepJob) -> _cloud.Submitted:
        _cloud.check_reachable_store(job, "the kubernetes step operator")
        return self._submit_with(self._api(), job)

    def _submit_with(self, api: BatchV1Api, job: StepJob) -> _cloud.Submitted:
        created = api.create_namespaced_job(namespace=self.namespace, body=self.build_request(job))
        return _cloud.Submitted(api, str(created.metadata.name))  # type: ignore[union-attr]

    def _status(self, handle: _cloud.Submitted) -> JobStatus:
        return job_status(
            handle.client.read_namespaced_job_status(name=handle.id, namespace=self.namespace)
        )

    def _cancel(self, handle: _cloud.Submitted) -> None:
        # Background: the Job's pod goes with it.
        handle.client.delete_namespaced_job(
            name=handle.id, namespace=self.namespace, propagation_policy="Background"
        )

    def _explain(self, error: Exception) -> tuple[str, str] | None:
        return explain_kubernetes(error, namespace=self.namespace, context=self.context)

    def _api(self) -> BatchV1Api:
        from kubernetes import client, config

        try:
            api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=self.kubeconfig, context=self.context, persist_config=False
            )
        except config.ConfigException as kubeconfig_problem:
            if self.context or self.kubeconfig:
                raise ConfigError(
                    f"the kubernetes step operator cannot use kubeconfig context "
                    f"{self.context or '(current)'} of {self.kubeconfig or '~/.kube/config'}: "
                    f"{kubeconfig_problem}"
                ) from kubeconfig_problem
            configuration = client.Configuration()
            try:  # inside a cluster: the pod's service account
                config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
            except config.ConfigException as exc:
                raise ConfigError(
                    "the kubernetes step operator found neither a kubeconfig nor an in-cluster "
                    "service account: set kubeconfig=... or context=..., or run inside a cluster"
                ) from exc
            api_client = client.ApiClient(configuration)
        return client.BatchV1Api(api_client)


def explain_kubernetes(
    error: Exception, *, namespace: str, context: str | None
) -> tuple[str, str] | None:
    """What the Kubernetes API said (the client's ``ApiException``, an unreachable API server)
    and the fix."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    cluster = f"context {context}" if context else "the kubeconfig's current context"
    if isinstance(error, HTTPError):
        return (
            f"the Kubernetes API server cannot be reached: {error}",
            f"check that the cluster of {cluster} is up and reachable from here",
        )
    if not isinstance(error, ApiException):
        return None
    message = error.reason or ""
    try:
        body = json.loads(error.body or "")
        message = str(body.get("message") or message) if isinstance(body, dict) else message
    except ValueError:
        pass
    said = f"the Kubernetes API refused it (HTTP {error.status} {error.reason}): {message}"
    status = error.status or 0
    if status == 401:
        fix = f"the credentials of {cluster} were refused or have expired: log in again"
    elif status == 403 and "quota" in message.lower():
        fix = (
            f"namespace {namespace}'s ResourceQuota is used up: ask the step for fewer "
            "resources, wait for other pods to end, or raise the quota"
        )
    elif status == 403:
        fix = (
            f"allow the user or service account of {cluster} to create, get and delete "
            f"jobs.batch in namespace {namespace} (a Role and a RoleBinding)"
        )
    elif status == 404:
        fix = f"check that namespace {namespace} exists in the cluster of {cluster}"
    elif status in (400, 422):
        fix = "the Job was refused as invalid: check the image, the step's resources and settings"
    elif status == 429 or status >= 500:
        fix = "the API server is busy or failing: run again later (or give the step retries)"
    else:
        fix = f"check the operator's settings (namespace={namespace}, context, kubeconfig)"
    return said, fix


def job_status(job: V1Job) -> JobStatus:
    """running, succeeded or failed (with the Job's own reason) from a Job's status."""
    status = job.status
    if status is None:
        return JobStatus("running")
    if status.succeeded:
        return JobStatus("succeeded")
    for condition in status.conditions or ():
        if condition.type == "Failed" and condition.status == "True":
            return JobStatus("failed", f"Job failed: {condition.reason}: {condition.message}")
    if status.failed:
        return JobStatus("failed", "the Job's pod failed")
    return JobStatus("running")


def _resource_requirements(resources: Resources) -> Any:
    from kubernetes import client

    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if resources.cpu is not None:
        requests["cpu"] = cpu_quantity(resources.cpu)
    if resources.memory_bytes is not None:
        # A memory limit equal to the request: the pod is killed, not the node starved.
        requests["memory"] = limits["memory"] = memory_quantity(resources.memory_bytes)
    if resources.gpu:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(resources.gpu)
    if not requests:
        return None
    return client.V1ResourceRequirements(requests=requests, limits=limits or None)


def cpu_quantity(cores: float) -> str:
    """2.0 → "2", 0.5 → "500m"."""
    millis = round(cores * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def memory_quantity(size: int) -> str:
    """Bytes in the largest binary unit that divides them: 4 GiB → "4Gi"."""
    for unit, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)
