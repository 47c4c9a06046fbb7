"""Every error gristmill raises on purpose, in one tree; each class also inherits the builtin
it resembles, so ``except ValueError`` keeps working for callers who do not know us.

    GristmillError
    ├── PipelineDefinitionError (ValueError)   a step or pipeline that cannot be compiled
    │   └── ParameterError (TypeError)         a parameter of the wrong name, type or form
    ├── ConfigError (ValueError)               a bad run configuration, setting or project file
    ├── NotFoundError (LookupError)            no run / step / artifact by that name or id
    ├── OutputTypeError (TypeError)            a step returned a value its annotation does not allow
    ├── InvalidMetadataError (TypeError)       a metadata value that is not JSON
    ├── MaterializerError (TypeError)          a value that cannot be stored or loaded
    │   └── UnsafeArtifactError (PermissionError)  pickled data from a store not trusted
    ├── ArtifactStoreError (OSError)           the artifact store failed or lost data
    ├── StoreError (RuntimeError)              the metadata store failed or has a wrong schema
    ├── SecretError (PermissionError)          a secret that cannot be decrypted or is missing a key file
    ├── AuthError (PermissionError)            a server login, token or session refused
    │   └── LoginThrottledError                too many failed logins: wait ``retry_after`` seconds
    ├── MissingIntegrationError (ImportError)  an optional extra is not installed
    ├── DataVersionError (ValueError)          DVC-tracked data that is not the version recorded
    ├── ExperimentTrackerError (RuntimeError)  an experiment tracker could not start a run or register a model
    ├── StepOperatorError (RuntimeError)       a step operator's provider (Kubernetes, SageMaker, ...) refused or failed a job
    ├── RunFailedError (RuntimeError)          a run finished with failed steps
    ├── RunTimeoutError (TimeoutError)         a run still not ended when ``wait``/``stop`` gave up
    └── ServiceError (RuntimeError)            a test service (gristmill.testing) would not start

Errors inside a YAML file (pipeline or run configuration) are ConfigError or
PipelineDefinitionError whose message starts with ``file:line:column``.

Messages say what was wrong, where (file:line, step, argument) and how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gristmill.client import Run


class GristmillError(Exception):
    """The base of every error gristmill raises on purpose."""


class PipelineDefinitionError(GristmillError, ValueError):
    """A step or pipeline definition that cannot be compiled into a run."""


class ParameterError(PipelineDefinitionError, TypeError):
    """A parameter with an unknown name, a wrong type or a value that is not JSON."""


class ConfigError(GristmillError, ValueError):
    """A run configuration, setting or project file that is not valid."""


class NotFoundError(GristmillError, LookupError):
    """Nothing in the store matches the name or id asked for."""


class OutputTypeError(GristmillError, TypeError):
    """A step returned a value that does not fit the type its return annotation declares."""


class InvalidMetadataError(GristmillError, TypeError):
    """A metadata key or value that cannot be recorded (values must be JSON)."""


class MaterializerError(GristmillError, TypeError):
    """A value that no materializer can store, or stored data that cannot be loaded."""


class UnsafeArtifactError(MaterializerError, PermissionError):
    """Loading would unpickle data from an artifact store that is not trusted."""


class ArtifactStoreError(GristmillError, OSError):
    """The artifact store could not write or read data."""


class StoreError(GristmillError, RuntimeError):
    """The metadata store failed, or its schema does not match this gristmill."""


class SecretError(GristmillError, PermissionError):
    """A secret cannot be read (no key, or the wrong key) or is malformed."""


class AuthError(GristmillError, PermissionError):
    """The gristmill server refused a login, an API token or a session (unknown, wrong,
    expired or revoked), or a role too low for what was asked."""


class LoginThrottledError(AuthError):
    """Too many failed logins in a row for a user or from an address; ``retry_after`` is how
    many seconds to wait before the next attempt is even checked."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DataVersionError(GristmillError, ValueError):
    """DVC-tracked input data that is not the version its DVC entry or the run recorded."""


class MissingIntegrationError(GristmillError, ImportError):
    """An optional integration's package is not installed. ``.pip`` is the command that
    installs it: the gristmill extra, or ``requirement`` for a third-party plugin."""

    def __init__(
        self, package: str, extra: str, feature: str, *, requirement: str | None = None
    ) -> None:
        self.package = package
        self.extra = extra
        self.pip = f'pip install "{requirement or f"gristmill[{extra}]"}"'
        super().__init__(
            f"{feature} needs the '{package}' package, which is not installed. "
            f"Install it with: {self.pip}",
            name=package,
        )


class ExperimentTrackerError(GristmillError, RuntimeError):
    """An experiment tracker (MLflow, W&B) could not start a step's run or register a model."""


class StepOperatorError(GristmillError, RuntimeError):
    """A step operator's provider API (Kubernetes, SageMaker, AWS Batch, Vertex AI) refused or
    failed a job request: the message names the operator, the step, the provider's own
    message and the fix (credentials, permissions, region, quota, ...)."""


class RunTimeoutError(GristmillError, TimeoutError):
    """``Run.wait``/``gristmill runs wait`` (or ``runs stop``) gave up before the run ended;
    the run goes on. ``.run`` is the run as last read."""

    def __init__(self, message: str, run: Run | None = None) -> None:
        super().__init__(message)
        self.run = run


class RunFailedError(GristmillError, RuntimeError):
    """A run finished with at least one failed step; ``.run`` is the tracked run."""

    def __init__(self, message: str, run: Run | None = None) -> None:
        super().__init__(message)
        self.run = run


class ServiceError(GristmillError, RuntimeError):
    """A service started for tests (PostgreSQL, an S3 server) could not be started."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' — did you mean 'x'?' for the closest choice, or a list of valid choices."""
    options = sorted(set(choices))
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if close:
        return f" — did you mean '{close[0]}'?"
    if not options:
        return ""
    shown = ", ".join(f"'{o}'" for o in options[:12])
    more = f" and {len(options) - 12} more" if len(options) > 12 else ""
    return f" (valid: {shown}{more})"


def describe_value(value: Any) -> str:
    """A short, safe description of a value for error messages (type and a clipped repr)."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"
