"""Other frameworks' spellings over gristmill's own API (``gristmill.compat.zenml``), so a
project written for them ports by changing its import lines. Adapters only: nothing here runs,
stores or tracks anything itself, and nothing else in gristmill imports this package."""
