"""Tools for teaching with the chapters: papermill runs, student copies, grading, metrics.

Chapters import only :func:`record` from here (it needs nothing but IPython, so it works in Colab);
the command-line tools behind ``python -m mingrok course`` live in the submodules and import
papermill and PyYAML (the ``course`` extra) when they run.
"""

from .record import record

__all__ = ["record"]
