"""The ``gristmill`` command: ``gristmill NOUN VERB [ARGS]``. Subcommands load on first use,
so ``gristmill --help`` imports neither the stores nor Rich."""
