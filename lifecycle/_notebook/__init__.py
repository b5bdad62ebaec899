"""The results explorer in Jupyter (``lifecycle[notebook]``): ``%lifecycle_runs``.

The one room of the tree that imports IPython and ipywidgets (the ``notebook`` extra). Modules:
``_model`` (``Explorer``: the explorer as plain
Python, over the workflow SDK), ``_refresh`` (the background refresh), ``_widget`` (the
ipywidgets view), ``_magic`` (the line magic and ``load_ipython_extension``). Environments
(``--env`` names → stores) are the workflow SDK's (``lifecycle._workflow._environments``): the
SDK's ``Workflow(name, Environment.PROD)`` reads the same store.
"""

from __future__ import annotations

from lifecycle._workflow._environments import environments

from ._magic import load_ipython_extension
from ._model import ConfirmationRequired, Explorer, Loaded
from ._widget import ExplorerWidget

__all__ = [
    "ConfirmationRequired",
    "Explorer",
    "ExplorerWidget",
    "Loaded",
    "environments",
    "load_ipython_extension",
]
