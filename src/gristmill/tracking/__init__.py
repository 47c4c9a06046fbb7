"""Experiment trackers: steps that name one run inside the tracker's run, with what they log
through gristmill mirrored there (``base``), and the MLflow and W&B flavors. Nothing here is
imported by ``import gristmill``; the flavors import their packages when used."""
