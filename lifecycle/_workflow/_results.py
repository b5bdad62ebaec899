"""Task results: bytes in the store's blobs, indexed by the ``ResultStored`` fact of the task's
container stream (``run-{id}/{task}``), so a result is addressable by run and task, from any
process that opens the store, and reusable by other workflows.

The engine encodes them (``lifecycle._engine._results``: msgpack for plain data, pickle for
everything else), so ``result()`` gives back the original Python object. A value neither can
encode fails its task with a message that says so.
"""

from __future__ import annotations

import hashlib
from typing import Any

from lifecycle._engine import decode_result
from lifecycle._errors import StoreError
from lifecycle._stores import RunStore
from lifecycle.events import ResultStored

__all__ = ["load_result"]


async def load_result(store: RunStore, stored: ResultStored) -> Any:
    """The object a ``ResultStored`` fact points to; ``None`` when its blob is gone (the seed:
    "its cache entry has expired"). Raises ``StoreError`` for bytes that do not match their
    SHA-256 or cannot be decoded."""
    data = await store.get_blob(stored.key)
    if data is None:
        return None
    if stored.sha256 and hashlib.sha256(data).hexdigest() != stored.sha256:
        raise StoreError(f"the result bytes under {stored.key} do not match their SHA-256")
    return decode_result(stored.codec, data)
