"""``job_version``: an integer that changes when a workflow's definition does.

A definition's fingerprint is a hash of its task ids (each a hash of the task's name, function,
source, constant inputs, upstream names and options — see ``_dag``), so it changes with the DAG
and with any task's source, and not with comments in the workflow body. The store keeps, per
workflow, a registry blob under ``workflow/{name}/versions``: every fingerprint seen, with its
number and its task list. A fingerprint seen before keeps its number (reverting a change goes
back to the old version); a new one gets the next. ``current`` is the version run or deployed
last: the "current definition" that ``Workflow`` resolves ``task_name`` against.

The registry is read, changed and written back without a transaction (blobs have no compare-and-
set): two processes registering *new* definitions of one workflow at the same instant may both
take the same number. Registering an already-known definition is safe.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import msgspec

from lifecycle._stores import RunStore

from ._dag import Dag

__all__ = ["Registry", "VersionInfo", "load_registry", "register_version", "registry_key"]


class VersionInfo(msgspec.Struct, kw_only=True):
    """One version of a workflow definition."""

    version: int
    fingerprint: str
    tasks: list[dict[str, Any]]
    function: str = ""
    file: str = ""
    created_at: _dt.datetime | None = None


class Registry(msgspec.Struct, kw_only=True):
    """Every version of one workflow, and which is current."""

    name: str
    current: int | None = None
    versions: list[VersionInfo] = msgspec.field(default_factory=list)

    def get(self, version: int | None) -> VersionInfo | None:
        """The entry of ``version`` (of the current version when ``None``)."""
        wanted = self.current if version is None else version
        return next((v for v in self.versions if v.version == wanted), None)


_decoder = msgspec.json.Decoder(Registry)


def registry_key(name: str) -> str:
    """The blob key of a workflow's version registry."""
    return f"workflow/{name}/versions"


async def load_registry(store: RunStore, name: str) -> Registry:
    """The registry of workflow ``name`` (empty when it has never been registered)."""
    data = await store.get_blob(registry_key(name))
    return _decoder.decode(data) if data else Registry(name=name)


async def register_version(store: RunStore, dag: Dag) -> int:
    """The version number of ``dag``'s definition, registering it (and making it current)."""
    registry = await load_registry(store, dag.name)
    entry = next((v for v in registry.versions if v.fingerprint == dag.fingerprint), None)
    if entry is None:
        entry = VersionInfo(
            version=max((v.version for v in registry.versions), default=0) + 1,
            fingerprint=dag.fingerprint,
            tasks=dag.definition(),
            function=dag.function,
            file=dag.file,
            created_at=_dt.datetime.now(_dt.UTC),
        )
        registry.versions.append(entry)
    elif registry.current == entry.version:
        return entry.version  # nothing changes: no write
    registry.current = entry.version
    await store.put_blob(registry_key(dag.name), msgspec.json.encode(registry))
    return entry.version
