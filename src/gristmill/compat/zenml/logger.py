"""``from zenml.logger import get_logger`` → ``from gristmill.compat.zenml.logger import
get_logger``."""

from gristmill.compat.zenml import get_logger

__all__ = ["get_logger"]
