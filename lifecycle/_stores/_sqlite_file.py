"""The SQLite store's file, as the operating system sees it: is it still the file we opened, and
who owns the ``-wal``/``-shm`` files beside it.

Two faults SQLite does not report clearly. A database file deleted (or replaced by a rename)
while open is written on through its unlinked inode: every commit succeeds, and the path
reopens empty — so the writer compares the file's identity before each commit. And a process
of another user that opens the store (read-only, say) makes the ``-wal``/``-shm`` files if they
are missing, owned by that user; the owner's writes then fail with a bare "attempt to write a
readonly database" — so the error names the files, their owner and the fix.
"""

from __future__ import annotations

import os

from lifecycle._errors import StoreError

__all__ = ["Identity", "check_same_file", "foreign_files_hint", "identity_of"]

Identity = tuple[int, int]  # (st_dev, st_ino)


def identity_of(path: str) -> Identity:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def check_same_file(url: str, path: str, opened: Identity | None) -> None:
    """Raise ``StoreError`` unless ``path`` is still the file opened as ``opened``. One ``stat``
    (about 1 µs); the writer calls it under the write lock, before ``COMMIT``."""
    try:
        now: Identity | None = identity_of(path)
    except FileNotFoundError:
        now = None
    if now != opened:
        what = "deleted" if now is None else "replaced by another file"
        raise StoreError(
            f"{url}: the database file {path!r} was {what} while the store had it open: "
            "refusing to write, since nothing written now could be read back from that path; "
            "nothing was written. Close the store; restore the file (or open the new one) and "
            "open it again"
        )


def foreign_files_hint(path: str) -> str | None:
    """Why a write may have been refused as read-only: the ``-wal``/``-shm`` files exist and
    this process cannot write them (another user's process made them). ``None`` otherwise."""
    foreign = []
    for suffix in ("-wal", "-shm"):
        name = path + suffix
        try:
            st = os.stat(name)
        except OSError:
            continue
        if st.st_uid != os.geteuid() and not os.access(name, os.W_OK):
            foreign.append((name, st.st_uid))
    if not foreign:
        return None
    names = " and ".join(repr(n) for n, _ in foreign)
    owners = ", ".join(sorted({str(uid) for _, uid in foreign}))
    return (
        f"{names} belong to uid {owners}, not to this process (uid {os.geteuid()}), and it cannot "
        "write them: a process of that user opened the store (a read-only reader, say) while "
        "they did not exist, and SQLite made them. Fix: give them to the database's owner "
        f"(e.g. `sudo chown {os.geteuid()} {' '.join(n for n, _ in foreign)}`), or let every "
        "user of the store share a group with group-writable files; do not delete a non-empty "
        "-wal, it may hold commits. Avoid it by running readers as the owner, or by opening the "
        "store as the owner first (the files then exist and stay the owner's while it is open)"
    )
