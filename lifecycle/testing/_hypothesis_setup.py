"""The ``hypothesis`` entry point: Hypothesis calls :func:`_hypothesis_setup_hook` when it is
imported, so ``st.from_type(SomeFact)`` draws facts msgspec can encode.

Kept tiny and lazy: this module is imported during Hypothesis' own import, and importing
``lifecycle`` must never import Hypothesis (the hook runs only once Hypothesis is loading).
"""

from __future__ import annotations

import sys

__all__: list[str] = []


def _hypothesis_setup_hook() -> None:
    """Register wire-safe strategies for every fact class, ``Fact`` and ``Recorded``."""
    if "lifecycle.testing._strategies" in sys.modules:
        # Hypothesis is being imported by _strategies itself, which registers its strategies
        # when its own import completes (importing it here would be circular).
        return
    from ._strategies import register_strategies  # noqa: PLC0415  (Hypothesis is loading now)

    register_strategies()
