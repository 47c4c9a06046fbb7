"""Settings of the cloud step operators (Kubernetes, SageMaker, Vertex AI, AWS Batch): pydantic,
imported only to validate settings when a component is registered, never on the run path.
Credentials are accepted only as secret references (each flavor's ``secret_fields``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

_IMAGE = "Image the step runs in when the step names none (settings={'image': ...})."


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KubernetesStepOperatorConfig(_Settings):
    namespace: str = Field("default", description="Namespace the Jobs are created in.")
    context: str | None = Field(None, description="kubeconfig context (default: the current).")
    kubeconfig: str | None = Field(
        None, description="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)."
    )
    service_account: str | None = Field(None, description="Service account of the step's pod.")
    image_pull_secret: str | None = Field(
        None, description="Secret with the registry credentials to pull the image."
    )
    secret_name: str | None = Field(
        None,
        description="Kubernetes Secret holding GRISTMILL_SECRETS_KEY (and GRISTMILL_STORE_URL "
        "when it carries a password); the Job refers to it, never copies it.",
    )
    image: str | None = Field(None, description=_IMAGE)


class _AWSSettings(_Settings):
    region: str | None = Field(None, description="AWS region (default: the AWS config's).")
    aws_access_key_id: str | None = Field(
        None, description="Access key id, as a secret reference (default: the AWS chain)."
    )
    aws_secret_access_key: str | None = Field(
        None, description="Secret access key, as a secret reference."
    )
    secrets_arn: str | None = Field(
        None,
        pattern=r"^arn:aws[a-z-]*:secretsmanager:",
        description="Secrets Manager secret (a JSON object) holding GRISTMILL_SECRETS_KEY and, "
        "when it carries a password, GRISTMILL_STORE_URL.",
    )
    image: str | None = Field(None, description=_IMAGE)


class SageMakerStepOperatorConfig(_AWSSettings):
    role_arn: str = Field(
        pattern=r"^arn:aws[a-z-]*:iam::", description="IAM role the training job runs as."
    )
    output_path: str = Field(
        pattern=r"^s3://[^/]+", description="S3 prefix for SageMaker's own job output."
    )
    instance_type: str | None = Field(
        None, description="ml.* instance type (default: the smallest that fits the resources)."
    )
    volume_size_gb: int = Field(30, ge=1, strict=True, description="Storage volume size.")
    max_runtime_seconds: int = Field(
        86400, ge=1, strict=True, description="Stopping condition: the longest a step may run."
    )


class AWSBatchStepOperatorConfig(_AWSSettings):
    job_queue: str = Field(description="Job queue (name or ARN) the steps are submitted to.")
    platform: str = Field(
        "EC2", pattern=r"^(EC2|FARGATE)$", description="Platform of the job definition."
    )
    job_role_arn: str | None = Field(None, description="IAM role the step's container assumes.")
    execution_role_arn: str | None = Field(
        None, description="IAM role that pulls the image and reads secrets_arn (Fargate)."
    )
    timeout_seconds: int | None = Field(
        None, ge=60, strict=True, description="The longest a step may run."
    )


class VertexStepOperatorConfig(_Settings):
    project: str = Field(description="Google Cloud project id.")
    location: str = Field("us-central1", description="Region of the custom jobs.")
    machine_type: str | None = Field(
        None, description="Machine type (default: the smallest n1-standard that fits)."
    )
    accelerator_type: str = Field(
        "NVIDIA_TESLA_T4", description="Accelerator for steps asking for GPUs."
    )
    boot_disk_size_gb: int = Field(100, ge=10, strict=True, description="Boot disk size.")
    service_account: str | None = Field(None, description="Service account the job runs as.")
    service_account_key: str | None = Field(
        None, description="Service account key JSON, as a secret reference (default: ADC)."
    )
    secret_version: str | None = Field(
        None,
        pattern=r"^projects/[^/]+/secrets/[^/]+/versions/[^/]+$",
        description="Secret Manager version (a JSON object) holding GRISTMILL_SECRETS_KEY and, "
        "when it carries a password, GRISTMILL_STORE_URL.",
    )
    image: str | None = Field(None, description=_IMAGE)
