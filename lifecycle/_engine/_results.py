"""Container results: how a callable's return value is encoded, stored and read back.

Plain data — ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, and lists and dicts
(``str`` or ``int`` keys) of plain data — is encoded with msgspec as msgpack (codec
``msgpack``): compact, fast, readable from any language. Everything else (tuples, sets,
dataclasses, DataFrames, …) is pickled (codec ``pickle``) so that it comes back as the original
Python object. The codec is recorded in the ``ResultStored`` fact, next to the size and the
SHA-256 of the bytes; the bytes are kept in the store's blobs under :func:`result_key`.

A pickle is code: load results only from stores you trust.
"""

from __future__ import annotations

import hashlib
import pickle
from typing import TYPE_CHECKING, Any, Final

import msgspec

from lifecycle import events as ev
from lifecycle._errors import StoreError, UnknownRun
from lifecycle._views import run_stream

if TYPE_CHECKING:
    from lifecycle._runs import AsyncRuns
    from lifecycle._stores import RunStore

__all__ = [
    "decode_result",
    "encode_result",
    "find_result",
    "load_result",
    "result_key",
    "store_result",
]

_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder()
_SCALARS: Final = frozenset({type(None), bool, int, float, str, bytes})
_MAX_DEPTH: Final = 64


def _plain(value: Any, depth: int = 0) -> bool:
    """Whether msgpack gives ``value`` back exactly (same types, all the way down)."""
    t = type(value)
    if t in _SCALARS:
        return True
    if depth > _MAX_DEPTH:
        return False
    if t is list:
        return all(_plain(v, depth + 1) for v in value)
    if t is dict:
        return all(type(k) in (str, int) and _plain(v, depth + 1) for k, v in value.items())
    return False


def encode_result(value: Any) -> tuple[str, bytes]:
    """``(codec, bytes)`` for ``value``: ``msgpack`` for plain data, else ``pickle``.

    Raises ``TypeError`` when neither can encode it (a lambda, an open file, a lock).
    """
    if _plain(value):
        try:
            return "msgpack", _encoder.encode(value)
        except (TypeError, ValueError, OverflowError):
            pass  # e.g. an int beyond 64 bits: pickle keeps it
    try:
        return "pickle", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise TypeError(
            f"a {type(value).__name__} result can be encoded neither by msgspec nor by pickle: "
            f"{exc}"
        ) from exc


def decode_result(codec: str, data: bytes) -> Any:
    """The value ``data`` encodes. Raises ``StoreError`` for an unknown codec or bad bytes."""
    try:
        if codec == "msgpack":
            return _decoder.decode(data)
        if codec == "pickle":
            return pickle.loads(data)  # results come from the user's own store
    except Exception as exc:
        raise StoreError(f"a {codec} result could not be decoded: {exc}") from exc
    raise StoreError(f"unknown result codec {codec!r} (known: msgpack, pickle)")


def result_key(run_id: int, container: str | None) -> str:
    """Where the bytes of a result are kept: ``result/run-{id}/{container}``."""
    head = f"result/{run_stream(run_id)}"
    return f"{head}/{container}" if container else head


async def store_result(
    store: RunStore, run_id: int, container: str | None, value: Any
) -> ev.ResultStored:
    """Encode ``value``, keep its bytes in the store and return the ``ResultStored`` fact to
    record (the caller records it). Raises ``TypeError`` when ``value`` cannot be encoded."""
    codec, data = encode_result(value)
    key = result_key(run_id, container)
    await store.put_blob(key, data)
    return ev.ResultStored(
        key=key, codec=codec, size=len(data), sha256=hashlib.sha256(data).hexdigest()
    )


async def find_result(
    runs: AsyncRuns, run_id: int, container: str | None = None
) -> ev.ResultStored | None:
    """The ``ResultStored`` fact of ``container`` of run ``run_id`` (of the run itself when
    ``container`` is ``None``, or when the run has no container streams and ``container`` is its
    one unit of work), or ``None``. Raises ``UnknownRun`` for an unknown run or container."""
    view = await runs.get(run_id)
    if container is not None and container in view.containers:
        return view.containers[container].result
    if container is not None and view.containers:
        raise UnknownRun(
            f"run {run_id} has no container {container!r} "
            f"(containers: {', '.join(view.containers)})"
        )
    found: ev.ResultStored | None = None
    for record in await runs.store.read([run_stream(run_id)]):
        if isinstance(record.event, ev.ResultStored):
            found = record.event
    return found


async def load_result(runs: AsyncRuns, run_id: int, container: str | None = None) -> Any:
    """The value ``container`` of run ``run_id`` returned, decoded (the original Python object),
    or ``None`` when none is stored (still running, failed, returned ``None``, or a command).

    Raises ``UnknownRun`` for an unknown run or container, ``StoreError`` when the stored bytes
    are missing or do not match their SHA-256.
    """
    fact = await find_result(runs, run_id, container)
    if fact is None:
        return None
    data = await runs.store.get_blob(fact.key)
    if data is None:
        raise StoreError(f"the result of run {run_id} {container or ''} ({fact.key}) is missing")
    if fact.sha256 and hashlib.sha256(data).hexdigest() != fact.sha256:
        raise StoreError(f"the result bytes under {fact.key} do not match their SHA-256")
    return decode_result(fact.codec, data)
