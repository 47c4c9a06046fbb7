"""The cloud step operators' requests for the quickstart's train step, checked against the
provider SDKs' own request models: the ``kubernetes`` client's models (a round trip through
its serializer), botocore's service models through its ``Stubber`` (SageMaker, AWS Batch) and
the ``google.cloud.aiplatform_v1`` types (Vertex AI). No cluster or cloud is reached: these
prove the requests are well-formed and carry the image, command, environment and resources;
they do not prove that a live service accepts or runs them."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from gristmill.errors import ConfigError
from gristmill.execution import RunContext
from gristmill.project import Project
from gristmill.stacks.flavors import instantiate, validate_config
from gristmill.step_operators.base import JobStatus, StepJob

pytest.importorskip("kubernetes")
pytest.importorskip("google.cloud.aiplatform_v1")
pytest.importorskip("boto3")

from botocore.exceptions import ParamValidationError
from botocore.stub import ANY, Stubber

QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart"
IMAGE = "registry.example.com/wine/train:1.4"
RESOURCES = {"cpu": 2, "memory": "4GiB", "gpu": 1}
SECRETS_KEY = "a-fernet-key-that-must-never-appear-in-a-request="
ROLE = "arn:aws:iam::123456789012:role/gristmill-training"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:gristmill-AbCdEf"


@pytest.fixture
def run(project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunContext:
    """A compiled (not started) run of a copy of the quickstart, its train step asking for
    resources and an image."""
    for variable in ("GRISTMILL_SECRETS_KEY", "GRISTMILL_STORE_URL", "GRISTMILL_PROJECT"):
        monkeypatch.delenv(variable, raising=False)
    folder = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, folder, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.syspath_prepend(str(folder))
    for name in ("steps", "pipeline"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    from pipeline import training  # type: ignore[import-not-found]

    plan = training.with_options(
        steps={"train": {"resources": RESOURCES, "settings": {"image": IMAGE}}}
    ).compile()
    stack = project.stack()
    return RunContext(
        plan,
        store=project.store(),
        artifact_store=project.artifact_store(stack),
        stack=stack,
        orchestrator="test-cloud-operators",
    )


def operator(flavor: str, **settings: Any) -> Any:
    """Built through the one flavor path (settings validated against the flavor's model)."""
    return instantiate("step_operator", flavor, settings)


def train_job(run: RunContext, flavor: str = "kubernetes", **settings: Any) -> StepJob:
    job: StepJob = operator(flavor, **settings).job_for(run, "train")
    return job


def command_of(run: RunContext) -> list[str]:
    return ["python", "-m", "gristmill.execution", "step", "--run", run.plan.run_id, "train"]


def test_the_train_job_carries_the_steps_resources_image_and_worker_command(
    run: RunContext,
) -> None:
    job = train_job(run, namespace="ml")
    assert job.step_id == "train"
    assert job.image == IMAGE
    assert job.resources.to_dict() == {"cpu": 2.0, "memory": "4GiB", "gpu": 1}
    assert list(job.command) == command_of(run)
    assert job.environment["GRISTMILL_STORE_URL"] == run.store.url


# -- the flavor path ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flavor", "settings"),
    [
        ("kubernetes", {"namespace": "ml", "secret_name": "gristmill"}),
        ("sagemaker", {"role_arn": ROLE, "output_path": "s3://bucket/out"}),
        ("aws_batch", {"job_queue": "gpu"}),
        ("vertex", {"project": "wine-project"}),
    ],
)
def test_each_flavor_is_registered_and_its_settings_validated(
    flavor: str, settings: dict[str, Any]
) -> None:
    assert validate_config("step_operator", flavor, settings) == settings
    assert operator(flavor, **settings).flavor == flavor
    with pytest.raises(ConfigError, match="has no setting 'namspace'"):
        validate_config("step_operator", flavor, {**settings, "namspace": "x"})


@pytest.mark.parametrize(
    ("flavor", "settings", "field"),
    [
        ("sagemaker", {"role_arn": ROLE, "output_path": "s3://b/o"}, "aws_secret_access_key"),
        ("aws_batch", {"job_queue": "gpu"}, "aws_access_key_id"),
        ("vertex", {"project": "p"}, "service_account_key"),
    ],
)
def test_credentials_are_accepted_only_as_secret_references(
    flavor: str, settings: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=f"'{field}' is a credential"):
        validate_config("step_operator", flavor, {**settings, field: "AKIAIOSFODNN7EXAMPLE"})
    reference = {field: "{{ secret.aws.value }}"}
    assert validate_config("step_operator", flavor, {**settings, **reference})[field] == (
        "{{ secret.aws.value }}"
    )


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="role_arn"):
        validate_config(
            "step_operator", "sagemaker", {"role_arn": "admin", "output_path": "s3://b"}
        )
    with pytest.raises(ConfigError, match="platform"):
        validate_config("step_operator", "aws_batch", {"job_queue": "q", "platform": "LAMBDA"})
    with pytest.raises(ConfigError, match="secret_version"):
        validate_config("step_operator", "vertex", {"project": "p", "secret_version": "mine"})


def test_a_step_without_an_image_is_refused_with_the_fix(run: RunContext) -> None:
    job = train_job(run)
    bare = dataclasses.replace(job, image=None)
    with pytest.raises(ConfigError, match=r"step 'train' has no image.*settings=\{'image'"):
        operator("kubernetes").build_request(bare)
    request = operator("kubernetes", image="fallback:1").build_request(bare)
    assert request.spec.template.spec.containers[0].image == "fallback:1"


# -- Kubernetes -----------------------------------------------------------------------------


def round_trip(job: Any) -> tuple[dict[str, Any], Any]:
    """The Job as the client sends it (JSON), and that JSON read back into a V1Job."""
    from kubernetes.client import ApiClient

    with ApiClient() as api:
        sent = api.sanitize_for_serialization(job)
        text = json.dumps(sent)
        return json.loads(text), api.deserialize(text, "V1Job", "application/json")


def test_kubernetes_job_for_the_train_step_round_trips_through_the_client_models(
    run: RunContext,
) -> None:
    from kubernetes.client import V1Job

    job = train_job(run, namespace="ml", service_account="trainer", image_pull_secret="regcred")
    request = operator(
        "kubernetes", namespace="ml", service_account="trainer", image_pull_secret="regcred"
    ).build_request(job)
    sent, back = round_trip(request)
    assert isinstance(back, V1Job)
    assert back == request  # nothing lost or renamed on the way through the client's models

    assert sent["apiVersion"] == "batch/v1" and sent["kind"] == "Job"
    assert sent["metadata"]["namespace"] == "ml"
    assert sent["metadata"]["generateName"].startswith("gristmill-train-")
    labels = sent["metadata"]["labels"]
    assert labels == {
        "gristmill.io/run-id": run.plan.run_id,
        "gristmill.io/step": "train",
        "gristmill.io/step-run-id": run.plan.steps["train"].step_run_id,
    }
    assert sent["spec"]["backoffLimit"] == 0
    pod = sent["spec"]["template"]
    assert pod["metadata"]["labels"] == labels
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["serviceAccountName"] == "trainer"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    (container,) = pod["spec"]["containers"]
    assert container["image"] == IMAGE
    assert container["command"] == command_of(run)
    assert container["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"},
        "limits": {"memory": "4Gi", "nvidia.com/gpu": "1"},
    }
    env = {e["name"]: e for e in container["env"]}
    assert env["GRISTMILL_STORE_URL"]["value"] == run.store.url
    assert env["GRISTMILL_IMAGE"]["value"] == IMAGE


def test_kubernetes_takes_the_secrets_key_from_a_secret_never_from_the_manifest(
    run: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRISTMILL_SECRETS_KEY", SECRETS_KEY)
    monkeypatch.setenv("GRISTMILL_STORE_URL", "postgresql://ml:hunter2hunter2@db:5432/gristmill")
    job = train_job(run)
    with pytest.raises(ConfigError, match="secret_name=") as refused:
        operator("kubernetes").build_request(job)
    assert SECRETS_KEY not in str(refused.value)
    assert "hunter2" not in str(refused.value)

    sent, _ = round_trip(operator("kubernetes", secret_name="gristmill").build_request(job))
    assert SECRETS_KEY not in json.dumps(sent)
    assert "hunter2" not in json.dumps(sent)
    env = {e["name"]: e for e in sent["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GRISTMILL_SECRETS_KEY"] == {
        "name": "GRISTMILL_SECRETS_KEY",
        "valueFrom": {
            "secretKeyRef": {"name": "gristmill", "key": "GRISTMILL_SECRETS_KEY", "optional": True}
        },
    }
    assert env["GRISTMILL_STORE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "gristmill",
        "key": "GRISTMILL_STORE_URL",
        "optional": False,
    }


def test_kubernetes_quantities() -> None:
    from gristmill.step_operators.kubernetes import cpu_quantity, memory_quantity

    assert [cpu_quantity(c) for c in (2.0, 0.5, 1.25)] == ["2", "500m", "1250m"]
    assert memory_quantity(4 * 2**30) == "4Gi"
    assert memory_quantity(512 * 10**6) == "500000Ki"
    assert memory_quantity(1000) == "1000"


def test_kubernetes_status_from_the_clients_job_status_models(run: RunContext) -> None:
    """``_status`` reads a V1Job (here handed over by a stand-in for BatchV1Api: the HTTP
    layer is not exercised) and maps it."""
    from kubernetes.client import V1Job, V1JobCondition, V1JobStatus

    from gristmill.step_operators._cloud import Submitted

    class Api:
        def __init__(self, status: V1JobStatus) -> None:
            self.status = status
            self.asked: list[tuple[str, str]] = []

        def read_namespaced_job_status(self, *, name: str, namespace: str) -> V1Job:
            self.asked.append((name, namespace))
            return V1Job(status=self.status)

    k8s = operator("kubernetes", namespace="ml")
    failed = V1JobStatus(
        failed=1,
        conditions=[
            V1JobCondition(
                type="Failed", status="True", reason="BackoffLimitExceeded", message="no more"
            )
        ],
    )
    cases = [
        (V1JobStatus(active=1), JobStatus("running")),
        (V1JobStatus(succeeded=1), JobStatus("succeeded")),
        (failed, JobStatus("failed", "Job failed: BackoffLimitExceeded: no more")),
    ]
    for status, expected in cases:
        api = Api(status)
        assert k8s._status(Submitted(api, "gristmill-train-abc")) == expected
        assert api.asked == [("gristmill-train-abc", "ml")]


# -- SageMaker ------------------------------------------------------------------------------


def aws_client(service: str) -> Any:
    import boto3

    return boto3.client(
        service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


SAGEMAKER = {"role_arn": ROLE, "output_path": "s3://wine-bucket/sagemaker"}


def test_sagemaker_training_job_for_the_train_step_against_botocores_model(
    run: RunContext,
) -> None:
    sagemaker = operator("sagemaker", **SAGEMAKER)
    job = train_job(run, "sagemaker", **SAGEMAKER)
    request = sagemaker.build_request(job)
    assert request["AlgorithmSpecification"] == {
        "TrainingImage": IMAGE,
        "TrainingInputMode": "File",
        "ContainerEntrypoint": ["python"],
        "ContainerArguments": command_of(run)[1:],
    }
    assert request["ResourceConfig"] == {
        "InstanceType": "ml.g5.xlarge",  # the smallest with 2 vCPUs, 4 GiB and a GPU
        "InstanceCount": 1,
        "VolumeSizeInGB": 30,
    }
    assert request["RoleArn"] == ROLE
    assert request["OutputDataConfig"] == {"S3OutputPath": "s3://wine-bucket/sagemaker"}
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert request["Environment"] == {
        "GRISTMILL_STORE_URL": run.store.url,
        "GRISTMILL_IMAGE": IMAGE,
        **{k: v for k, v in job.environment.items() if k != "GRISTMILL_STORE_URL"},
    }
    name = request["TrainingJobName"]
    assert name.startswith("gristmill-train-") and len(name) <= 63

    client = aws_client("sagemaker")
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}"
    with Stubber(client) as stub:
        # The client validates the parameters against the service model, and the stub
        # compares them with the request built for the step (the name has a clock suffix).
        stub.add_response(
            "create_training_job", {"TrainingJobArn": arn}, {**request, "TrainingJobName": ANY}
        )
        handle = sagemaker._submit_with(client, job)
        stub.assert_no_pending_responses()
    assert handle.id.startswith("gristmill-train-")

    described = {
        "TrainingJobName": handle.id,
        "TrainingJobArn": arn,
        "AlgorithmSpecification": {"TrainingInputMode": "File", "TrainingImage": IMAGE},
        "ResourceConfig": request["ResourceConfig"],
        "StoppingCondition": request["StoppingCondition"],
        "CreationTime": "2026-11-30T00:00:00Z",
        "SecondaryStatus": "Training",
        "ModelArtifacts": {"S3ModelArtifacts": "s3://wine-bucket/sagemaker/model.tar.gz"},
    }
    with Stubber(client) as stub:
        for status, extra in (
            ("InProgress", {}),
            ("Completed", {}),
            ("Failed", {"FailureReason": "AlgorithmError: exit code 1"}),
        ):
            stub.add_response(
                "describe_training_job",
                {**described, "TrainingJobStatus": status, **extra},
                {"TrainingJobName": handle.id},
            )
        assert sagemaker._status(handle) == JobStatus("running")
        assert sagemaker._status(handle) == JobStatus("succeeded")
        assert sagemaker._status(handle) == JobStatus(
            "failed", f"SageMaker training job {handle.id}: AlgorithmError: exit code 1"
        )


def test_sagemaker_request_is_exactly_what_the_client_sends(run: RunContext) -> None:
    sagemaker = operator("sagemaker", **SAGEMAKER, instance_type="ml.p3.2xlarge")
    job = train_job(run, "sagemaker", **SAGEMAKER)
    request = sagemaker.build_request(job)
    assert request["ResourceConfig"]["InstanceType"] == "ml.p3.2xlarge"  # configured wins
    client = aws_client("sagemaker")
    with Stubber(client) as stub:
        stub.add_response("create_training_job", {"TrainingJobArn": "arn:x"}, request)
        client.create_training_job(**request)
    # And the validation is real: a malformed request never leaves the client.
    with Stubber(client) as stub, pytest.raises(ParamValidationError, match="InstanceCount"):
        stub.add_response("create_training_job", {"TrainingJobArn": "arn:x"})
        client.create_training_job(
            **{**request, "ResourceConfig": {**request["ResourceConfig"], "InstanceCount": "1"}}
        )


def test_sagemaker_credentials_travel_as_a_secrets_manager_reference(
    run: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRISTMILL_SECRETS_KEY", SECRETS_KEY)
    job = train_job(run, "sagemaker", **SAGEMAKER)
    with pytest.raises(ConfigError, match="secrets_arn="):
        operator("sagemaker", **SAGEMAKER).build_request(job)
    sagemaker = operator("sagemaker", **SAGEMAKER, secrets_arn=SECRET_ARN)
    request = sagemaker.build_request(job)
    assert SECRETS_KEY not in json.dumps(request)
    assert request["Environment"]["GRISTMILL_SECRETS_FROM"] == SECRET_ARN
    assert request["AlgorithmSpecification"]["ContainerArguments"] == [
        "-m",
        "gristmill.step_operators.secret_env",
        *command_of(run),
    ]
    client = aws_client("sagemaker")
    with Stubber(client) as stub:
        stub.add_response("create_training_job", {"TrainingJobArn": "arn:x"}, request)
        client.create_training_job(**request)


def test_sagemaker_instance_types() -> None:
    from gristmill.step_operators.sagemaker import instance_type_for

    assert instance_type_for(None, None, None) == "ml.m5.large"
    assert instance_type_for(3, 4, 0) == "ml.m5.xlarge"
    assert instance_type_for(8, 100, None) == "ml.m5.12xlarge"
    assert instance_type_for(2, 4, 2) == "ml.g5.12xlarge"
    with pytest.raises(ConfigError, match="instance_type="):
        instance_type_for(2, 4, 16)


# -- AWS Batch ------------------------------------------------------------------------------


def test_aws_batch_submit_job_for_the_train_step_against_botocores_model(
    run: RunContext,
) -> None:
    settings = {"job_queue": "gpu-queue", "timeout_seconds": 3600}
    batch = operator("aws_batch", **settings)
    job = train_job(run, "aws_batch", **settings)
    definition = batch.job_definition_request(job)
    assert definition["containerProperties"]["image"] == IMAGE
    assert definition["type"] == "container"
    assert definition["platformCapabilities"] == ["EC2"]
    definition_arn = (
        f"arn:aws:batch:us-east-1:123456789012:job-definition/{definition['jobDefinitionName']}:1"
    )
    request = batch.build_request(job, job_definition=definition_arn)
    assert request["jobQueue"] == "gpu-queue"
    assert request["jobDefinition"] == definition_arn
    overrides = request["containerOverrides"]
    assert overrides["command"] == command_of(run)
    assert overrides["resourceRequirements"] == [
        {"type": "VCPU", "value": "2"},
        {"type": "MEMORY", "value": "4096"},
        {"type": "GPU", "value": "1"},
    ]
    env = {e["name"]: e["value"] for e in overrides["environment"]}
    assert env["GRISTMILL_STORE_URL"] == run.store.url
    assert env["GRISTMILL_IMAGE"] == IMAGE
    assert request["retryStrategy"] == {"attempts": 1}
    assert request["timeout"] == {"attemptDurationSeconds": 3600}

    client = aws_client("batch")
    with Stubber(client) as stub:
        stub.add_response(
            "describe_job_definitions",
            {"jobDefinitions": []},
            {"jobDefinitionName": definition["jobDefinitionName"], "status": "ACTIVE"},
        )
        stub.add_response(
            "register_job_definition",
            {
                "jobDefinitionName": definition["jobDefinitionName"],
                "jobDefinitionArn": definition_arn,
                "revision": 1,
            },
            definition,
        )
        # jobName carries a clock suffix: compared apart below.
        stub.add_response(
            "submit_job",
            {"jobName": "x", "jobId": "7c1f0b2e-job"},
            {**request, "jobName": ANY},
        )
        handle = batch._submit_with(client, job)
        stub.assert_no_pending_responses()
    assert handle.id == "7c1f0b2e-job"

    # The same image again: the registered definition is found and reused.
    with Stubber(client) as stub:
        stub.add_response(
            "describe_job_definitions",
            {
                "jobDefinitions": [
                    {
                        "jobDefinitionName": definition["jobDefinitionName"],
                        "jobDefinitionArn": definition_arn,
                        "revision": 1,
                        "type": "container",
                        "status": "ACTIVE",
                    }
                ]
            },
            {"jobDefinitionName": definition["jobDefinitionName"], "status": "ACTIVE"},
        )
        stub.add_response(
            "submit_job", {"jobName": "x", "jobId": "second"}, {**request, "jobName": ANY}
        )
        assert batch._submit_with(client, job).id == "second"
        stub.assert_no_pending_responses()

    def described(status: str, **extra: Any) -> dict[str, Any]:
        return {
            "jobs": [
                {
                    "jobName": "x",
                    "jobId": handle.id,
                    "jobQueue": "gpu-queue",
                    "status": status,
                    "startedAt": 1,
                    "jobDefinition": definition_arn,
                    **extra,
                }
            ]
        }

    with Stubber(client) as stub:
        for status, extra in (
            ("RUNNABLE", {}),
            ("RUNNING", {}),
            ("SUCCEEDED", {}),
            ("FAILED", {"statusReason": "Essential container in task exited"}),
        ):
            stub.add_response("describe_jobs", described(status, **extra), {"jobs": [handle.id]})
        assert batch._status(handle) == JobStatus("running")
        assert batch._status(handle) == JobStatus("running")
        assert batch._status(handle) == JobStatus("succeeded")
        assert batch._status(handle) == JobStatus(
            "failed", "AWS Batch job 7c1f0b2e-job: Essential container in task exited"
        )


def test_aws_batch_credentials_come_from_the_job_definitions_secrets(
    run: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRISTMILL_SECRETS_KEY", SECRETS_KEY)
    job = train_job(run, "aws_batch", job_queue="q")
    with pytest.raises(ConfigError, match="secrets_arn="):
        operator("aws_batch", job_queue="q").build_request(job)
    batch = operator(
        "aws_batch",
        job_queue="q",
        platform="FARGATE",
        secrets_arn=SECRET_ARN,
        execution_role_arn=ROLE,
    )
    definition = batch.job_definition_request(job)
    request = batch.build_request(job)
    assert SECRETS_KEY not in json.dumps([definition, request])
    assert definition["containerProperties"]["secrets"] == [
        {"name": "GRISTMILL_SECRETS_KEY", "valueFrom": f"{SECRET_ARN}:GRISTMILL_SECRETS_KEY::"}
    ]
    assert definition["containerProperties"]["executionRoleArn"] == ROLE
    client = aws_client("batch")
    with Stubber(client) as stub:
        stub.add_response(
            "register_job_definition",
            {"jobDefinitionName": "d", "jobDefinitionArn": "arn:d", "revision": 1},
            definition,
        )
        stub.add_response("submit_job", {"jobName": "x", "jobId": "y"}, request)
        client.register_job_definition(**definition)
        client.submit_job(**request)


# -- Vertex AI ------------------------------------------------------------------------------


def test_vertex_custom_job_for_the_train_step_with_the_aiplatform_types(
    run: RunContext,
) -> None:
    from google.cloud.aiplatform_v1 import AcceleratorType, CustomJob

    vertex = operator("vertex", project="wine-project", service_account="trainer@x.iam")
    job = train_job(run, "vertex", project="wine-project")
    request = vertex.build_request(job)
    assert isinstance(request, CustomJob)
    back = CustomJob.from_json(CustomJob.to_json(request))
    assert back == request

    (pool,) = back.job_spec.worker_pool_specs
    assert pool.replica_count == 1
    assert pool.container_spec.image_uri == IMAGE
    assert list(pool.container_spec.command) == ["python"]
    assert list(pool.container_spec.args) == command_of(run)[1:]
    env = {e.name: e.value for e in pool.container_spec.env}
    assert env["GRISTMILL_STORE_URL"] == run.store.url
    assert env["GRISTMILL_IMAGE"] == IMAGE
    assert pool.machine_spec.machine_type == "n1-standard-2"  # 2 vCPUs, 7.5 GB >= 4 GiB
    assert pool.machine_spec.accelerator_type == AcceleratorType.NVIDIA_TESLA_T4
    assert pool.machine_spec.accelerator_count == 1
    assert back.job_spec.service_account == "trainer@x.iam"
    assert back.labels["gristmill-step"] == "train"
    assert back.display_name.startswith("gristmill-train-")
    sent = json.loads(CustomJob.to_json(request))
    machine = sent["jobSpec"]["workerPoolSpecs"][0]["machineSpec"]
    assert machine["acceleratorType"] == AcceleratorType.NVIDIA_TESLA_T4.value  # JSON: the number
    assert machine["acceleratorCount"] == 1


def test_vertex_credentials_and_accelerators(
    run: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.cloud.aiplatform_v1 import CustomJob

    with pytest.raises(ConfigError, match="did you mean 'NVIDIA_TESLA_T4'"):
        operator("vertex", project="p", accelerator_type="NVIDIA_TESLA_T5").build_request(
            train_job(run, "vertex", project="p")
        )
    monkeypatch.setenv("GRISTMILL_SECRETS_KEY", SECRETS_KEY)
    job = train_job(run, "vertex", project="p")
    with pytest.raises(ConfigError, match="secret_version="):
        operator("vertex", project="p").build_request(job)
    version = "projects/p/secrets/gristmill/versions/latest"
    request = operator("vertex", project="p", secret_version=version).build_request(job)
    text = CustomJob.to_json(request)
    assert SECRETS_KEY not in text
    spec = request.job_spec.worker_pool_specs[0].container_spec
    assert {e.name: e.value for e in spec.env}["GRISTMILL_SECRETS_FROM"] == version
    assert list(spec.args[:2]) == ["-m", "gristmill.step_operators.secret_env"]


def test_vertex_status_from_custom_job_states(run: RunContext) -> None:
    """``_status`` reads a CustomJob (from a stand-in for JobServiceClient: no gRPC)."""
    from google.cloud.aiplatform_v1 import CustomJob, JobState
    from google.rpc.status_pb2 import Status

    from gristmill.step_operators._cloud import Submitted

    class Jobs:
        def __init__(self, found: CustomJob) -> None:
            self.found = found

        def get_custom_job(self, *, name: str) -> CustomJob:
            return self.found

    vertex = operator("vertex", project="p")
    name = "projects/p/locations/us-central1/customJobs/42"
    assert vertex._status(Submitted(Jobs(CustomJob(state=JobState.JOB_STATE_RUNNING)), name)) == (
        JobStatus("running")
    )
    done = CustomJob(state=JobState.JOB_STATE_SUCCEEDED)
    assert vertex._status(Submitted(Jobs(done), name)) == JobStatus("succeeded")
    failed = CustomJob(state=JobState.JOB_STATE_FAILED, error=Status(message="OOM"))
    assert vertex._status(Submitted(Jobs(failed), name)) == JobStatus(
        "failed", f"Vertex AI custom job {name}: OOM"
    )


# -- secret_env ------------------------------------------------------------------------------


def test_secret_env_loads_the_secret_then_runs_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gristmill.step_operators import secret_env

    client = aws_client("secretsmanager")
    monkeypatch.setenv("GRISTMILL_SECRETS_FROM", SECRET_ARN)
    # setenv first: monkeypatch then removes what secret_env sets when the test ends.
    monkeypatch.setenv("GRISTMILL_SECRETS_KEY", "")
    monkeypatch.delenv("GRISTMILL_SECRETS_KEY")
    ran: list[tuple[str, list[str]]] = []
    with Stubber(client) as stub:
        stub.add_response(
            "get_secret_value",
            {"SecretString": json.dumps({"GRISTMILL_SECRETS_KEY": SECRETS_KEY})},
            {"SecretId": SECRET_ARN},
        )
        secret_env.main(
            ["python", "-m", "gristmill.execution", "step"],
            client=client,
            execute=lambda file, argv: ran.append((file, argv)),
        )
    assert os.environ["GRISTMILL_SECRETS_KEY"] == SECRETS_KEY
    assert ran == [("python", ["python", "-m", "gristmill.execution", "step"])]

    with Stubber(client) as stub, pytest.raises(ConfigError, match=r"only hold GRISTMILL_\*"):
        stub.add_response(
            "get_secret_value",
            {"SecretString": json.dumps({"PATH": "/evil"})},
            {"SecretId": SECRET_ARN},
        )
        secret_env.main(["true"], client=client, execute=lambda file, argv: None)


@pytest.mark.parametrize(
    ("flavor", "module", "extra"),
    [
        ("kubernetes", "kubernetes", "kubernetes"),
        ("sagemaker", "boto3", "sagemaker"),
        ("aws_batch", "boto3", "aws_batch"),
        ("vertex", "google.cloud.aiplatform_v1", "vertex"),
    ],
)
def test_a_missing_sdk_names_the_pip_line(
    flavor: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gristmill.errors import MissingIntegrationError

    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    with pytest.raises(MissingIntegrationError, match=f'pip install "gristmill\\[{extra}\\]"'):
        validate_config("step_operator", flavor, {})


def test_stopping_a_run_stops_the_aws_jobs_with_valid_requests() -> None:
    """``_cancel`` (called by ``launch`` on Ctrl-C or a failure to follow the job)."""
    from gristmill.step_operators._cloud import Submitted

    sagemaker = aws_client("sagemaker")
    with Stubber(sagemaker) as stub:
        stub.add_response("stop_training_job", {}, {"TrainingJobName": "gristmill-train-1"})
        operator("sagemaker", **SAGEMAKER)._cancel(Submitted(sagemaker, "gristmill-train-1"))
        stub.assert_no_pending_responses()
    batch = aws_client("batch")
    with Stubber(batch) as stub:
        stub.add_response(
            "terminate_job", {}, {"jobId": "j-1", "reason": "the gristmill run was stopped"}
        )
        operator("aws_batch", job_queue="q")._cancel(Submitted(batch, "j-1"))
        stub.assert_no_pending_responses()


# -- the providers' errors ---------------------------------------------------------------------
# Each raised by the provider's real client: botocore's through its Stubber, the kubernetes
# and Vertex AI clients' through their own HTTP stacks, answered on loopback with the error
# documents those APIs send (nothing in the clients is replaced).


class ErrorAnswers:
    """An HTTP server on loopback that answers every request with one status and JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        payload = json.dumps(body).encode()
        self.paths: list[str] = []
        paths = self.paths

        class Answer(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                paths.append(f"{self.command} {self.path}")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def remote_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """A store a cloud job could reach (the operators refuse this machine's SQLite file)."""
    monkeypatch.setenv("GRISTMILL_STORE_URL", "postgresql+psycopg://ml@db.internal:5432/runs")


@pytest.mark.parametrize(
    ("code", "status", "fix"),
    [
        ("ResourceLimitExceeded", 400, "Service Quotas"),
        ("AccessDeniedException", 400, "iam:PassRole"),
        ("UnrecognizedClientException", 400, "credentials were refused"),
        ("ValidationException", 400, "check the operator's settings"),
    ],
)
def test_a_sagemaker_api_error_is_a_step_operator_error_with_the_fix(
    run: RunContext,
    remote_store: None,
    monkeypatch: pytest.MonkeyPatch,
    code: str,
    status: int,
    fix: str,
) -> None:
    from gristmill.errors import GristmillError, StepOperatorError

    sagemaker = operator("sagemaker", **SAGEMAKER, region="eu-west-1")
    client = aws_client("sagemaker")
    monkeypatch.setattr(sagemaker, "_client", lambda: client)
    said = f"The account-level service limit for ml.g5.xlarge is 0 ({code})"
    with Stubber(client) as stub:
        stub.add_client_error(
            "create_training_job",
            service_error_code=code,
            service_message=said,
            http_status_code=status,
        )
        with pytest.raises(StepOperatorError) as refused:
            sagemaker.launch(run, "train")
        stub.assert_no_pending_responses()
    message = str(refused.value)
    assert isinstance(refused.value, GristmillError)
    assert message.startswith("step operator sagemaker: submitting the job of step 'train'")
    assert f"AWS sagemaker CreateTrainingJob was refused ({code}, HTTP {status}): {said}" in message
    assert fix in message
    from botocore.exceptions import ClientError

    assert isinstance(refused.value.__cause__, ClientError)


def test_an_aws_batch_error_while_following_the_job_cancels_it_and_says_why(
    run: RunContext, remote_store: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gristmill.errors import StepOperatorError

    batch = operator("aws_batch", job_queue="gpu", region="us-east-1")
    client = aws_client("batch")
    monkeypatch.setattr(batch, "_client", lambda: client)
    arn = "arn:aws:batch:us-east-1:123456789012:job-definition/gristmill-x:1"
    with Stubber(client) as stub:
        stub.add_response(
            "describe_job_definitions",
            {
                "jobDefinitions": [
                    {
                        "jobDefinitionName": "gristmill-x",
                        "jobDefinitionArn": arn,
                        "revision": 1,
                        "type": "container",
                    }
                ]
            },
        )
        stub.add_response("submit_job", {"jobName": "gristmill-train", "jobId": "job-42"})
        stub.add_client_error(
            "describe_jobs",
            service_error_code="ExpiredTokenException",
            service_message="The security token included in the request is expired",
            http_status_code=403,
        )
        stub.add_response("terminate_job", {}, {"jobId": "job-42", "reason": ANY})
        with pytest.raises(StepOperatorError) as refused:
            batch.launch(run, "train")
        stub.assert_no_pending_responses()  # the job was terminated, not left running
    message = str(refused.value)
    assert "step operator aws_batch: following the job of step 'train'" in message
    assert "DescribeJobs was refused (ExpiredTokenException, HTTP 403)" in message
    assert "token included in the request is expired" in message
    assert "credentials were refused or have expired" in message


def test_aws_client_side_errors_are_explained() -> None:
    from botocore.exceptions import NoCredentialsError, NoRegionError

    from gristmill.step_operators._cloud import explain_aws

    said, fix = explain_aws(NoCredentialsError(), service="batch", region=None) or ("", "")
    assert "Unable to locate credentials" in said and "AWS_PROFILE" in fix
    said, fix = explain_aws(NoRegionError(), service="batch", region=None) or ("", "")
    assert "region=" in fix
    assert explain_aws(ValueError("a bug"), service="batch", region=None) is None


@pytest.mark.parametrize(
    ("status", "said", "fix"),
    [
        (
            403,
            'jobs.batch is forbidden: User "ci" cannot create resource "jobs" in API group '
            '"batch" in the namespace "ml"',
            "jobs.batch in namespace ml (a Role and a RoleBinding)",
        ),
        (
            403,
            'jobs.batch "gristmill-train" is forbidden: exceeded quota: compute, requested: '
            "requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=4, limited: "
            "requests.nvidia.com/gpu=4",
            "namespace ml's ResourceQuota is used up",
        ),
        (404, 'namespaces "ml" not found', "check that namespace ml exists"),
        (401, "Unauthorized", "log in again"),
    ],
)
def test_a_kubernetes_api_error_is_a_step_operator_error_with_the_fix(
    run: RunContext,
    remote_store: None,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    said: str,
    fix: str,
) -> None:
    from kubernetes import client as k8s

    from gristmill.errors import StepOperatorError

    answers = ErrorAnswers(
        status,
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": said,
            "reason": "Forbidden",
            "code": status,
        },
    )
    try:
        kubernetes = operator("kubernetes", namespace="ml", secret_name="gristmill")
        configuration = k8s.Configuration()
        configuration.host = answers.url
        api = k8s.BatchV1Api(k8s.ApiClient(configuration))
        monkeypatch.setattr(kubernetes, "_api", lambda: api)
        with pytest.raises(StepOperatorError) as refused:
            kubernetes.launch(run, "train")
    finally:
        answers.close()
    assert answers.paths == ["POST /apis/batch/v1/namespaces/ml/jobs"]  # the real client's call
    message = str(refused.value)
    assert message.startswith("step operator kubernetes: submitting the job of step 'train'")
    assert f"the Kubernetes API refused it (HTTP {status} " in message
    assert said in message
    assert fix in message
    from kubernetes.client.exceptions import ApiException

    assert isinstance(refused.value.__cause__, ApiException)


def test_an_unreachable_kubernetes_api_server_is_explained() -> None:
    from urllib3.exceptions import MaxRetryError

    from gristmill.step_operators.kubernetes import explain_kubernetes

    error = MaxRetryError(None, "/apis/batch/v1/namespaces/ml/jobs", "Connection refused")  # type: ignore[arg-type]
    said, fix = explain_kubernetes(error, namespace="ml", context="prod") or ("", "")
    assert "cannot be reached" in said and "context prod" in fix


@pytest.mark.parametrize(
    ("status", "state", "said", "fix"),
    [
        (
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for aiplatform.googleapis.com/custom_model_training_nvidia_t4_gpus",
            "a quota in europe-west4 was reached",
        ),
        (
            403,
            "PERMISSION_DENIED",
            "Permission 'aiplatform.customJobs.create' denied on resource",
            "roles/aiplatform.user",
        ),
        (404, "NOT_FOUND", "Project 'wine-project' not found", "check project=wine-project"),
    ],
)
def test_a_vertex_api_error_is_a_step_operator_error_with_the_fix(
    run: RunContext,
    remote_store: None,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    state: str,
    said: str,
    fix: str,
) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1

    from gristmill.errors import StepOperatorError

    answers = ErrorAnswers(status, {"error": {"code": status, "message": said, "status": state}})
    try:
        vertex = operator("vertex", project="wine-project", location="europe-west4")
        client = aiplatform_v1.JobServiceClient(
            transport="rest",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": answers.url},
        )
        monkeypatch.setattr(vertex, "_client", lambda: client)
        with pytest.raises(StepOperatorError) as refused:
            vertex.launch(run, "train")
    finally:
        answers.close()
    assert answers.paths[0].startswith(
        "POST /v1/projects/wine-project/locations/europe-west4/customJobs"
    )
    message = str(refused.value)
    assert message.startswith("step operator vertex: submitting the job of step 'train'")
    assert "Vertex AI refused it (" in message and f"HTTP {status}" in message
    assert said in message
    assert fix in message
    cause = refused.value.__cause__
    assert type(cause).__module__ == "google.api_core.exceptions"


def test_an_error_the_operator_does_not_know_is_not_wrapped(
    run: RunContext, remote_store: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sagemaker = operator("sagemaker", **SAGEMAKER)

    def broken() -> Any:
        raise KeyError("a bug, not the provider")

    monkeypatch.setattr(sagemaker, "_client", broken)
    with pytest.raises(KeyError, match="a bug"):
        sagemaker.launch(run, "train")
