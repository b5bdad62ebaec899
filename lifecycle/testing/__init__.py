"""``lifecycle.testing``: the kit for testing dialects, stores, adapters and integrations.

Importing ``lifecycle`` never imports this package (nor Hypothesis).
"""

from __future__ import annotations

__all__: list[str] = []
