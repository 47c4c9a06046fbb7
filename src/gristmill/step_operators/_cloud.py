"""What the cloud step operators share: the image a step runs in, its environment split into
plain values and credentials (which never go into a provider request in clear), names the
providers accept, and resources in the units they want. Plain functions; no SDK is imported."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gristmill.errors import ConfigError
from gristmill.options import Resources
from gristmill.step_operators.base import StepJob

SECRETS_KEY_VARIABLE = "GRISTMILL_SECRETS_KEY"
STORE_URL_VARIABLE = "GRISTMILL_STORE_URL"
# Where secret_env (the wrapper a SageMaker or Vertex job runs) finds the cloud secret.
SECRETS_FROM_VARIABLE = "GRISTMILL_SECRETS_FROM"
# The worker records the image it ran in from this variable (execution/worker.py).
IMAGE_VARIABLE = "GRISTMILL_IMAGE"
SECRET_ENV_MODULE = "gristmill.step_operators.secret_env"


@dataclass(frozen=True)
class Submitted:
    """A submitted job: the SDK client that submitted it, and the job's id there."""

    client: Any
    id: str


def is_credential(name: str, value: str) -> bool:
    """The secrets key always; the store URL when it carries a password."""
    if name == SECRETS_KEY_VARIABLE:
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
    """A SQLite file on this machine cannot be reached from a cluster or a cloud job."""
    url = job.environment.get(STORE_URL_VARIABLE, "")
    if url.startswith("sqlite"):
        raise ConfigError(
            f"{label} runs the step on another machine, which cannot reach this machine's "
            "SQLite metadata store: use a store the job can reach (GRISTMILL_STORE_URL="
            "postgresql://...) and a remote artifact store (s3, gcs, azure)"
        )


def resources_of(job: StepJob) -> Resources:
    resources = job.resources
    return resources if isinstance(resources, Resources) else Resources()


def memory_mib(resources: Resources) -> int | None:
    """Memory in MiB, rounded up."""
    size = resources.memory_bytes
    return None if size is None else -(-size // 2**20)
