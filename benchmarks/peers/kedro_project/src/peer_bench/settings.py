"""Kedro's defaults throughout (OmegaConfigLoader, DataCatalog, no hooks, no session store)."""
