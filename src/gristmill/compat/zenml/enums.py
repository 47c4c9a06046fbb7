"""``from zenml.enums import ModelStages`` → ``from gristmill.compat.zenml.enums import
ModelStages``."""

from gristmill.compat.zenml import ModelStages

__all__ = ["ModelStages"]
