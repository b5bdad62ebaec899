"""Rebuild the ``runs`` read model from the log.

The read model is derived data: each append upserts the rows of the runs it changed, in the same
transaction as the facts. If it is ever lost or suspect (a bug, a hand edit, a new column), it
can be recomputed by folding the whole log again — which is what :func:`rebuild_summaries` does,
on any :class:`RunStore`.
"""

from __future__ import annotations

from typing import Final

from lifecycle._runs import summary_of
from lifecycle._views import Projector

from ._base import RunStore

__all__ = ["rebuild_summaries"]

_PAGE: Final = 10_000


async def rebuild_summaries(store: RunStore) -> int:
    """Re-fold every record of ``store`` and replace its read model with the result; return
    the number of runs.

    Folding is lenient (``Projector(strict=False)``): a run whose log holds a fact its dialect
    rejects keeps the view it had just before that fact, as listings showed it. Run this while
    nothing else writes to the store: a run changed between the read and the replace would get
    its older row back (appending again to it brings the row up to date).
    """
    projector = Projector(strict=False)
    after = 0
    while True:
        page = await store.read_all(after=after, limit=_PAGE)
        if not page:
            break
        projector.feed(page)
        after = page[-1].position
    summaries = sorted((summary_of(view) for view in projector.views()), key=lambda s: s.run_id)
    await store.replace_summaries(summaries)
    return len(summaries)
