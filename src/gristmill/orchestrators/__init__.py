"""Orchestrators decide where and when steps run; the launcher runs them. Flavors register in
the ``gristmill.orchestrators`` entry-point group and are imported only when used."""

from gristmill.orchestrators.base import Orchestrator

__all__ = ["Orchestrator"]
