"""``from zenml.client import Client`` → ``from gristmill.compat.zenml.client import Client``."""

from gristmill.compat.zenml import Client

__all__ = ["Client"]
