"""Write transactions for the store, and sqlite3 errors turned into one-line StoreErrors."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from storage.db import describe
from storage.errors import StoreError

# SQLITE_CONSTRAINT_FOREIGNKEY: a row points at a session that does not exist.
_FOREIGN_KEY = 787


class Transaction:
    """`with Transaction(conn, lock) as conn:` one committed transaction, or a savepoint
    inside a transaction the caller already holds.

    A class rather than @contextmanager: add_segment runs once per final and this
    halves the Python overhead of its write path.
    """

    __slots__ = ("_conn", "_lock", "_nested")

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock) -> None:
        self._conn = conn
        self._lock = lock
        self._nested = False

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        conn = self._conn
        try:
            self._nested = conn.in_transaction
            # IMMEDIATE takes the write lock up front, so the busy timeout
            # applies instead of a mid-transaction SQLITE_BUSY.
            conn.execute("SAVEPOINT store_write" if self._nested else "BEGIN IMMEDIATE")
        except BaseException as exc:
            self._lock.release()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(describe(exc)) from exc
            raise
        return conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        conn = self._conn
        try:
            if exc_type is None:
                try:
                    if self._nested:
                        conn.execute("RELEASE store_write")
                    else:
                        conn.commit()
                    return
                except sqlite3.Error as failed:
                    exc = failed
            # Some errors (disk full, I/O) have already ended the transaction.
            if self._nested and conn.in_transaction:
                conn.execute("ROLLBACK TO store_write")
                conn.execute("RELEASE store_write")
            elif not self._nested:
                conn.rollback()
        finally:
            self._lock.release()
        if isinstance(exc, sqlite3.Error):
            raise StoreError(describe(exc)) from exc


@contextmanager
def friendly_errors() -> Iterator[None]:
    """sqlite3 errors become one-line StoreErrors; the original stays as __cause__."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(describe(exc)) from exc


def foreign_key_failed(exc: StoreError) -> bool:
    """Whether a StoreError came from a row pointing at a missing session."""
    return getattr(exc.__cause__, "sqlite_errorcode", None) == _FOREIGN_KEY
