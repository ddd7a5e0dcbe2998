"""The ``synthgen`` command: a thin click layer over the Python API.

``app`` holds the command group and error handling, ``secrets`` where keys come from, ``model``
the train / sample / inspect / evaluate commands, ``protect`` mask / keygen / encrypt / decrypt /
sign / verify.
"""

from synthgen.cli import model, protect, tables  # noqa: F401  (registers the commands)
from synthgen.cli.app import main

__all__ = ["main"]
