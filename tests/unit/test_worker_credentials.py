"""Workers through a gristmill server: the API token goes with a server URL wherever the
secrets key goes (Dask/Ray workers' environment, a step operator's job environment), is never
on a command line or in a job's repr, and reaches the cloud jobs only by secret reference
(a Kubernetes Secret, Secrets Manager, Secret Manager), checked against the providers' own
request models. A worker given a server URL without a token fails at once, saying so."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fixtures.pipelines import splitting
from gristmill.errors import ConfigError
from gristmill.execution import RunContext
from gristmill.execution.worker import worker_credentials, worker_project
from gristmill.project import Project
from gristmill.stacks.flavors import instantiate
from gristmill.store.rest.connection import save_connection

SERVER = "https://gristmill.example.com"
TOKEN = "gmt_a-token-that-must-never-appear-in-a-request"
SECRETS_KEY = "a-fernet-key-that-must-never-appear-either="
IMAGE = "registry.example.com/wine/train:1.4"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:gristmill-AbCdEf"


@pytest.fixture
def run(project: Project) -> RunContext:
    stack = project.stack()
    return RunContext(
        splitting.compile(n=3),
        store=project.store(),
        artifact_store=project.artifact_store(stack),
        stack=stack,
        orchestrator="test-credentials",
    )


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process records through a server, with a token in its environment."""
    monkeypatch.setenv("GRISTMILL_STORE_URL", SERVER)
    monkeypatch.setenv("GRISTMILL_API_TOKEN", TOKEN)
    monkeypatch.setenv("GRISTMILL_SECRETS_KEY", SECRETS_KEY)


def test_the_token_goes_with_a_server_url_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRISTMILL_API_TOKEN", TOKEN)
    monkeypatch.delenv("GRISTMILL_SECRETS_KEY", raising=False)
    assert worker_credentials(SERVER) == {"GRISTMILL_API_TOKEN": TOKEN}
    assert worker_credentials("sqlite:///tmp/metadata.db") == {}  # a database needs none
    monkeypatch.setenv("GRISTMILL_SECRETS_KEY", SECRETS_KEY)
    assert worker_credentials("postgresql://db/g") == {"GRISTMILL_SECRETS_KEY": SECRETS_KEY}


def test_the_token_saved_by_gristmill_connect_is_forwarded_for_its_server_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GRISTMILL_API_TOKEN", raising=False)
    monkeypatch.delenv("GRISTMILL_SECRETS_KEY", raising=False)
    save_connection(SERVER + "/api/v1", TOKEN)  # in the test project's user config
    assert worker_credentials(SERVER) == {"GRISTMILL_API_TOKEN": TOKEN}
    assert worker_credentials("https://another.example.com") == {}


def test_a_worker_with_a_server_url_and_no_token_fails_saying_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRISTMILL_STORE_URL", SERVER)
    monkeypatch.delenv("GRISTMILL_API_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="no GRISTMILL_API_TOKEN in its environment") as error:
        worker_project()
    assert "never passed on a command line" in str(error.value)
    monkeypatch.setenv("GRISTMILL_API_TOKEN", TOKEN)
    assert worker_project().store_url == SERVER  # opened lazily: nothing reached yet


def test_dask_and_ray_workers_get_the_token_in_their_environment(
    run: RunContext, served: None
) -> None:
    from gristmill.orchestrators.tasks import worker_environment_variables
    from gristmill.store.rest import RestStore

    assert "GRISTMILL_API_TOKEN" not in worker_environment_variables(run)  # SQLite: no token
    served_run = RunContext(  # recording through the server (nothing is sent here)
        run.plan,
        store=RestStore(SERVER, TOKEN),
        artifact_store=run.artifact_store,
        stack=run.stack,
        orchestrator="test-credentials",
    )
    env = worker_environment_variables(served_run)
    assert env["GRISTMILL_STORE_URL"] == SERVER  # the orchestrating process's store
    assert env["GRISTMILL_API_TOKEN"] == TOKEN
    assert env["GRISTMILL_SECRETS_KEY"] == SECRETS_KEY


def test_a_subprocess_job_gets_the_token_in_its_environment_not_its_command(
    run: RunContext, served: None
) -> None:
    job = instantiate("step_operator", "subprocess", {}).job_for(run, "numbers")
    assert job.environment["GRISTMILL_STORE_URL"] == SERVER
    assert job.environment["GRISTMILL_API_TOKEN"] == TOKEN
    assert TOKEN not in " ".join(job.command)
    assert TOKEN not in repr(job) and SECRETS_KEY not in repr(job)


def _cloud_job(run: RunContext, flavor: str, **settings: Any) -> tuple[Any, Any]:
    operator = instantiate("step_operator", flavor, {"image": IMAGE, **settings})
    return operator, operator.job_for(run, "numbers")


def test_kubernetes_takes_the_token_from_the_secret_never_from_the_manifest(
    run: RunContext, served: None
) -> None:
    pytest.importorskip("kubernetes")
    from kubernetes.client import ApiClient

    _, job = _cloud_job(run, "kubernetes")
    with pytest.raises(ConfigError, match="GRISTMILL_API_TOKEN") as refused:
        instantiate("step_operator", "kubernetes", {"image": IMAGE}).build_request(job)
    assert TOKEN not in str(refused.value)
    operator, job = _cloud_job(run, "kubernetes", secret_name="gristmill")
    with ApiClient() as api:  # as the client would send it, through its own models
        sent = api.sanitize_for_serialization(operator.build_request(job))
    assert TOKEN not in json.dumps(sent) and SECRETS_KEY not in json.dumps(sent)
    env = {e["name"]: e for e in sent["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GRISTMILL_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "gristmill",
        "key": "GRISTMILL_API_TOKEN",
        "optional": False,  # the job cannot record without it
    }
    assert env["GRISTMILL_STORE_URL"]["value"] == SERVER


def test_sagemaker_and_vertex_read_the_token_from_the_cloud_secret(
    run: RunContext, served: None
) -> None:
    pytest.importorskip("boto3")
    pytest.importorskip("google.cloud.aiplatform_v1")
    settings = {"role_arn": "arn:aws:iam::1:role/r", "output_path": "s3://b/o"}
    sagemaker, job = _cloud_job(run, "sagemaker", **settings)
    with pytest.raises(ConfigError, match="GRISTMILL_API_TOKEN"):
        sagemaker.build_request(job)
    sagemaker, job = _cloud_job(run, "sagemaker", **settings, secrets_arn=SECRET_ARN)
    request = sagemaker.build_request(job)
    assert TOKEN not in json.dumps(request)
    assert "GRISTMILL_API_TOKEN" not in request["Environment"]
    assert request["Environment"]["GRISTMILL_SECRETS_FROM"] == SECRET_ARN
    assert (
        "gristmill.step_operators.secret_env"
        in request["AlgorithmSpecification"]["ContainerArguments"]
    )

    version = "projects/p/secrets/gristmill/versions/latest"
    vertex, job = _cloud_job(run, "vertex", project="p", secret_version=version)
    custom = vertex.build_request(job)
    (spec,) = custom.job_spec.worker_pool_specs
    env = {e.name: e.value for e in spec.container_spec.env}
    assert "GRISTMILL_API_TOKEN" not in env and TOKEN not in str(custom)
    assert env["GRISTMILL_SECRETS_FROM"] == version


def test_aws_batch_takes_the_token_from_the_job_definitions_secrets(
    run: RunContext, served: None
) -> None:
    pytest.importorskip("boto3")
    batch, job = _cloud_job(run, "aws_batch", job_queue="q", secrets_arn=SECRET_ARN)
    definition = batch.job_definition_request(job)
    assert TOKEN not in json.dumps(definition)
    assert {
        "name": "GRISTMILL_API_TOKEN",
        "valueFrom": f"{SECRET_ARN}:GRISTMILL_API_TOKEN::",
    } in definition["containerProperties"]["secrets"]
    request = batch.build_request(job, job_definition="gristmill-x")
    assert TOKEN not in json.dumps(request)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8237", "http://localhost:8237"])
def test_a_cloud_job_refuses_a_server_on_this_machines_loopback(
    run: RunContext, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    from gristmill.step_operators._cloud import check_reachable_store

    monkeypatch.setenv("GRISTMILL_STORE_URL", url)
    monkeypatch.setenv("GRISTMILL_API_TOKEN", TOKEN)
    job = instantiate("step_operator", "subprocess", {}).job_for(run, "numbers")
    with pytest.raises(ConfigError, match="loopback"):
        check_reachable_store(job, "the kubernetes step operator")
    monkeypatch.setenv("GRISTMILL_STORE_URL", SERVER)
    job = instantiate("step_operator", "subprocess", {}).job_for(run, "numbers")
    check_reachable_store(job, "the kubernetes step operator")  # a reachable server: fine
