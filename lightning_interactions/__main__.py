"""``python -m lightning_interactions``: the command line of :mod:`lightning_interactions.cli`."""

from lightning_interactions.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
