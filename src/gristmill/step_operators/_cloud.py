"""What the cloud step operators share: the image a step runs in, its environment split into
plain values and credentials (which never go into a provider request in clear), names the
providers accept, resources in the units they want, the AWS operators' client, and the
providers' API errors explained (what was refused, and the fix). No SDK is imported here
until an operator runs."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gristmill.errors import ConfigError
from gristmill.options import Resources
from gristmill.step_operators.base import StepJob, StepOperator
from gristmill.store import safe_url

SECRETS_KEY_VARIABLE = "GRISTMILL_SECRETS_KEY"
STORE_URL_VARIABLE = "GRISTMILL_STORE_URL"
# A gristmill server's API token, when the store is one (a credential, like the secrets key).
TOKEN_VARIABLE = "GRISTMILL_API_TOKEN"
# Where secret_env (the wrapper a SageMaker or Vertex job runs) finds the cloud secret.
SECRETS_FROM_VARIABLE = "GRISTMILL_SECRETS_FROM"
# The worker records the image it ran in from this variable (execution/worker.py).
IMAGE_VARIABLE = "GRISTMILL_IMAGE"
SECRET_ENV_MODULE = "gristmill.step_operators.secret_env"
AWS_SECRETS_FIX = (
    "keep them in a Secrets Manager secret (a JSON object of these variables) and set "
    "secrets_arn=arn:aws:secretsmanager:..."
)


@dataclass(frozen=True)
class Submitted:
    """A submitted job: the SDK client that submitted it, and the job's id there."""

    client: Any
    id: str


def is_credential(name: str, value: str) -> bool:
    """The secrets key and a server's API token always; the store URL when it carries a
    password."""
    if name in (SECRETS_KEY_VARIABLE, TOKEN_VARIABLE):
        return True
    if name == STORE_URL_VARIABLE:
        try:
            return urlsplit(value).password is not None
        except ValueError:
            return True  # unparsable: keep it out of the request rather than guess
    return False


def split_environment(job: StepJob) -> tuple[dict[str, str], list[str]]:
    """(plain variables, names of the credentials left out)."""
    plain: dict[str, str] = {}
    hidden: list[str] = []
    for name, value in job.environment.items():
        if is_credential(name, value):
            hidden.append(name)
        else:
            plain[name] = value
    return plain, hidden


def refuse_credentials(hidden: list[str], label: str, fix: str) -> None:
    if hidden:
        raise ConfigError(
            f"the worker of {label} needs {' and '.join(hidden)}, which never go into a job "
            f"request in clear: {fix}"
        )


def image_for(job: StepJob, default: str | None, label: str) -> str:
    image = job.image or default
    if not image:
        raise ConfigError(
            f"step '{job.step_id}' has no image to run in on {label}: give the step one "
            "(@step(settings={'image': 'registry/name:tag'}), or `settings: {image: ...}` in "
            "YAML) or set image=... on the step operator"
        )
    return image


def wrapped_command(job: StepJob, secrets_from: str | None) -> list[str]:
    """The step's command, behind ``secret_env`` when the credentials come from a cloud secret."""
    if secrets_from is None:
        return list(job.command)
    return [job.command[0], "-m", SECRET_ENV_MODULE, *job.command]


def job_name(job: StepJob, *, max_length: int, unique: bool = True) -> str:
    """``gristmill-STEP-RUNID`` in letters, digits and hyphens, ``max_length`` at most; with a
    suffix from the clock when ``unique`` (a retried step is submitted again)."""
    step = re.sub(r"[^a-z0-9]+", "-", job.step_id.lower()).strip("-") or "step"
    suffix = f"-{job.step_run_id[:8]}" + (
        f"-{_base36(time.time_ns() // 1_000_000)}" if unique else ""
    )
    head = f"gristmill-{step}"[: max_length - len(suffix)].rstrip("-")
    return head + suffix


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while number:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
    return text or "0"


def label_value(text: str) -> str:
    """A value Kubernetes and the clouds accept as a label: 63 characters of [a-z0-9_-]."""
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")[:63].rstrip("-_") or "none"


def check_reachable_store(job: StepJob, label: str) -> None:
    """A SQLite file on this machine, or a gristmill server on its loopback, cannot be
    reached from a cluster or a cloud job."""
    url = job.environment.get(STORE_URL_VARIABLE, "")
    if url.startswith("sqlite"):
        raise ConfigError(
            f"{label} runs the step on another machine, which cannot reach this machine's "
            "SQLite metadata store: use a store the job can reach (GRISTMILL_STORE_URL="
            "postgresql://... or a gristmill server's https://...) and a remote artifact "
            "store (s3, gcs, azure)"
        )
    if url.startswith(("http://", "https://")):
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            host = ""
        if host in _LOOPBACK_HOSTS or host.startswith("127."):
            raise ConfigError(
                f"{label} runs the step on another machine, which cannot reach the gristmill "
                f"server at {safe_url(url)} (this machine's loopback): run the server where the jobs "
                "reach it (`gristmill server start --host 0.0.0.0`, behind TLS) and set "
                "GRISTMILL_STORE_URL to that address"
            )


_LOOPBACK_HOSTS = frozenset({"localhost", "::1", "0.0.0.0"})


def resources_of(job: StepJob) -> Resources:
    resources = job.resources
    return resources if isinstance(resources, Resources) else Resources()


def memory_mib(resources: Resources) -> int | None:
    """Memory in MiB, rounded up."""
    size = resources.memory_bytes
    return None if size is None else -(-size // 2**20)


def memory_gib(resources: Resources) -> float | None:
    size = resources.memory_bytes
    return None if size is None else size / 2**30


@dataclass(frozen=True)
class PreparedJob:
    """What every cloud request of a step is built from: its image, the variables that may go
    into the request in clear (with the image, and where the credentials come from), the
    names of the credentials left out, the command and the resources."""

    label: str
    image: str
    environment: dict[str, str]
    hidden: list[str]
    command: list[str]
    resources: Resources


def prepare_job(
    job: StepJob,
    *,
    flavor: str,
    default_image: str | None,
    secrets: str | None,
    fix: str,
    secrets_by_reference: bool = False,
) -> PreparedJob:
    """The parts of ``job`` a provider request is built from. ``secrets``: where the job's
    credentials come from (a secret's ARN, version or name); without one, a job that needs
    credentials is refused with ``fix``. ``secrets_by_reference``: the provider cannot put a
    secret in the job's environment (SageMaker, Vertex), so the command runs behind
    ``secret_env``, which reads the secret that ``GRISTMILL_SECRETS_FROM`` names."""
    label = f"step '{job.step_id}' on the {flavor} step operator"
    image = image_for(job, default_image, label)
    plain, hidden = split_environment(job)
    if secrets is None:
        refuse_credentials(hidden, label, fix)
    reference = secrets if secrets_by_reference else None
    if reference is not None:
        plain[SECRETS_FROM_VARIABLE] = reference
    plain[IMAGE_VARIABLE] = image
    return PreparedJob(
        label=label,
        image=image,
        environment=plain,
        hidden=hidden,
        command=wrapped_command(job, reference),
        resources=resources_of(job),
    )


class AWSStepOperator(StepOperator):
    """What the SageMaker and AWS Batch operators share: their AWS settings, the boto3 client
    built from them, and AWS's API errors explained."""

    requires = ("boto3",)
    secret_fields = ("aws_access_key_id", "aws_secret_access_key")
    poll_seconds = 15.0
    service = ""  # the boto3 service name

    def __init__(
        self,
        *,
        region: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        secrets_arn: str | None = None,
        image: str | None = None,
    ) -> None:
        self.region = region
        self._credentials = (aws_access_key_id, aws_secret_access_key)
        self.secrets_arn = secrets_arn
        self.image = image

    def _client(self) -> Any:
        import boto3

        key, secret = self._credentials
        return boto3.client(
            self.service,
            region_name=self.region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )

    def _explain(self, error: Exception) -> tuple[str, str] | None:
        return explain_aws(error, service=self.service, region=self.region)


# -- the providers' errors, explained ---------------------------------------------------------------

_AWS_CREDENTIALS = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "AuthFailure",
}
_AWS_PERMISSIONS = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
_AWS_QUOTAS = {
    "ResourceLimitExceeded",
    "LimitExceededException",
    "ServiceQuotaExceededException",
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
}
_AWS_NOT_FOUND = {"ResourceNotFound", "ResourceNotFoundException", "NoSuchEntity"}


def explain_aws(error: Exception, *, service: str, region: str | None) -> tuple[str, str] | None:
    """What AWS said (botocore's ``ClientError`` and client-side errors) and the fix."""
    try:
        from botocore import exceptions as aws  # type: ignore[import-untyped]
    except ImportError:
        return None
    where = f"region {region}" if region else "the region of the AWS configuration"
    if isinstance(error, aws.ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", "unknown"))
        message = str(details.get("Message") or error)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        operation = error.operation_name
        said = f"AWS {service} {operation} was refused ({code}, HTTP {status}): {message}"
        if code in _AWS_CREDENTIALS:
            fix = (
                "the AWS credentials were refused or have expired: renew them, or give the "
                "operator valid aws_access_key_id/aws_secret_access_key (secret references)"
            )
        elif code in _AWS_PERMISSIONS:
            fix = (
                f"allow the IAM identity to call {service}:{operation} (and iam:PassRole on the "
                "role the job runs as)"
            )
        elif code in _AWS_QUOTAS:
            fix = (
                f"a {service} quota or rate limit in {where} was reached: ask for more in "
                "Service Quotas, ask the step for fewer resources (a smaller instance), or run "
                "again later"
            )
        elif code in _AWS_NOT_FOUND:
            fix = f"check that the names and ARNs in the operator's settings exist in {where}"
        elif isinstance(status, int) and status >= 500:
            fix = f"{service} failed on its side: run again later (or give the step retries)"
        else:
            fix = (
                "check the operator's settings (role, queue, image, instance type), the step's "
                f"resources and the region ({where})"
            )
        return said, fix
    if isinstance(error, (aws.NoCredentialsError, aws.PartialCredentialsError)):
        return (
            f"no usable AWS credentials: {error}",
            "set up credentials where the run starts (AWS_PROFILE, ~/.aws/credentials, an "
            "instance role) or give the operator aws_access_key_id/aws_secret_access_key",
        )
    if isinstance(error, aws.NoRegionError):
        return str(error), "set region=... on the step operator (or AWS_DEFAULT_REGION)"
    if isinstance(error, aws.EndpointConnectionError):
        return (
            f"AWS {service} cannot be reached: {error}",
            f"check the network and that {service} is offered in {where}",
        )
    if isinstance(error, aws.BotoCoreError):
        return f"{type(error).__name__}: {error}", "check the operator's AWS settings"
    return None


def explain_google(error: Exception, *, project: str, location: str) -> tuple[str, str] | None:
    """What Google Cloud said (``google.api_core`` and ``google.auth`` errors) and the fix."""
    try:
        from google.api_core import exceptions as api
        from google.auth import exceptions as auth
    except ImportError:
        return None
    if isinstance(error, auth.GoogleAuthError):
        return (
            f"no usable Google Cloud credentials: {error}",
            "run `gcloud auth application-default login` where the run starts, or give the "
            "operator service_account_key (a secret reference)",
        )
    if not isinstance(error, api.GoogleAPICallError):
        return None
    said = f"Vertex AI refused it ({type(error).__name__}, HTTP {error.code}): {error.message}"
    # gRPC and REST name the same refusals differently (PermissionDenied / Forbidden, ...).
    if isinstance(error, (api.Unauthenticated, api.Unauthorized)):
        fix = "the credentials were refused or have expired: renew them"
    elif isinstance(error, (api.PermissionDenied, api.Forbidden)):
        fix = (
            f"give the identity the Vertex AI User role (roles/aiplatform.user) in project "
            f"{project}, and enable the Vertex AI API (aiplatform.googleapis.com) there"
        )
    elif isinstance(error, (api.ResourceExhausted, api.TooManyRequests)):
        fix = (
            f"a quota in {location} was reached (machines, GPUs, custom jobs): ask for more "
            "under IAM & Admin > Quotas, ask the step for fewer resources, or run again later"
        )
    elif isinstance(error, api.NotFound):
        fix = f"check project={project} and location={location}"
    elif isinstance(error, api.ServerError):
        fix = "Vertex AI failed on its side: run again later (or give the step retries)"
    else:
        fix = (
            f"check the image, the machine and accelerator types (offered in {location}?) and "
            "the step's resources"
        )
    return said, fix
