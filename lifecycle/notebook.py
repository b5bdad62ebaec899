"""The results explorer in Jupyter, for ``%load_ext lifecycle`` and ``%lifecycle_runs``
(``pip install 'lifecycle[notebook]'``).

:class:`Explorer` is the explorer as plain Python — what the widget shows and does, for scripts
and tests; :class:`ExplorerWidget` is its ipywidgets view; :func:`environments` lists the stores
``--env`` can name (``LIFECYCLE_STORE_<NAME>``). Importing this module imports IPython and
ipywidgets.
"""

from __future__ import annotations

from ._notebook import (
    ConfirmationRequired,
    Explorer,
    ExplorerWidget,
    Loaded,
    environments,
    load_ipython_extension,
)

__all__ = [
    "ConfirmationRequired",
    "Explorer",
    "ExplorerWidget",
    "Loaded",
    "environments",
    "load_ipython_extension",
]
