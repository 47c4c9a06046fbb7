"""``python -m gristmill.step_operators.secret_env COMMAND ...``: what a SageMaker or Vertex AI
job runs before the worker. It reads the cloud secret named by ``GRISTMILL_SECRETS_FROM`` (an
AWS Secrets Manager ARN, or a Google Secret Manager version ``projects/P/secrets/S/versions/V``)
— a JSON object of ``GRISTMILL_*`` variables — puts them in the environment and replaces itself
with COMMAND. The values never appear in the job's request, its command line or its output."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

from gristmill.errors import ConfigError, MissingIntegrationError
from gristmill.step_operators._cloud import SECRETS_FROM_VARIABLE


def secret_text(reference: str, *, client: Any = None) -> str:
    """The secret's text: Secrets Manager for an ARN, Secret Manager for a version name."""
    if reference.startswith("arn:"):
        if client is None:
            try:
                import boto3
            except ImportError as exc:
                raise MissingIntegrationError("boto3", "sagemaker", "secret_env") from exc
            client = boto3.client("secretsmanager", region_name=reference.split(":")[3])
        return str(client.get_secret_value(SecretId=reference)["SecretString"])
    if reference.startswith("projects/"):
        if client is None:
            try:
                from google.cloud import secretmanager  # type: ignore[attr-defined,unused-ignore]
            except ImportError as exc:
                raise MissingIntegrationError(
                    "google-cloud-secret-manager",
                    "vertex",
                    "secret_env",
                    requirement="google-cloud-secret-manager",
                ) from exc
            client = secretmanager.SecretManagerServiceClient()
        return str(client.access_secret_version(name=reference).payload.data.decode())
    raise ConfigError(
        f"{SECRETS_FROM_VARIABLE} is neither a Secrets Manager ARN (arn:aws:secretsmanager:...) "
        "nor a Secret Manager version (projects/P/secrets/S/versions/V)"
    )


def secret_variables(reference: str, *, client: Any = None) -> dict[str, str]:
    """The ``GRISTMILL_*`` variables the secret holds (nothing else may be set through it)."""
    try:
        values = json.loads(secret_text(reference, client=client))
    except json.JSONDecodeError:
        values = None
    if not isinstance(values, dict):
        raise ConfigError(
            f"the secret {reference} is not a JSON object of variables: store e.g. "
            '{"GRISTMILL_SECRETS_KEY": "..."}'
        )
    others = sorted(k for k in values if not str(k).startswith("GRISTMILL_"))
    if others:
        raise ConfigError(
            f"the secret {reference} may only hold GRISTMILL_* variables, not {others}"
        )
    return {str(k): str(v) for k, v in values.items()}


def main(
    argv: list[str], *, client: Any = None, execute: Callable[[str, list[str]], Any] = os.execvp
) -> Any:
    if not argv:
        raise SystemExit(
            f"usage: python -m {__spec__.name if __spec__ else 'secret_env'} COMMAND ..."
        )
    reference = os.environ.get(SECRETS_FROM_VARIABLE)
    if reference:
        os.environ.update(secret_variables(reference, client=client))
    return execute(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
