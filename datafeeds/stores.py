"""Which store a URL names: ``open_store`` picks the backend (``parquet:DIR`` or a folder,
``csv:DIR``, ``json:DIR``, ``sqlite:///PATH``, ``postgresql://...``; see ``store``) and
opens it. Apart from the base class in ``store``, so that the backends import the base and
only this imports them."""
from __future__ import annotations

from pathlib import Path

from datafeeds.errors import DataError
from datafeeds.store import DEFAULT_STORE, BarStore, redact


def open_store(url: str | Path = DEFAULT_STORE) -> BarStore:
    """The store at ``url`` (see the module's doc for the forms accepted).

    Raises
    ------
    DataError
        For an unknown scheme, or a backend whose driver is not installed.
    """
    text = str(url)
    scheme, _, rest = text.partition(":")
    if scheme in ("parquet", "csv", "json"):
        from datafeeds.store_files import FileStore

        return FileStore(Path(rest), scheme)
    if scheme == "sqlite":
        if not rest.startswith("///") or len(rest) == 3:
            raise DataError(f"store {text!r}: write sqlite:///relative/path.db or "
                            "sqlite:////absolute/path.db")
        from datafeeds.store_sql import SQLiteStore

        return SQLiteStore(Path(rest[3:]))
    if scheme in ("postgresql", "postgres"):
        from datafeeds.store_sql import PostgresStore

        return PostgresStore(text)
    if "://" in text:
        raise DataError(f"store {redact(text)!r}: unknown kind {scheme!r}; use parquet:DIR, "
                        "csv:DIR, json:DIR, sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
    from datafeeds.store_files import FileStore

    return FileStore(Path(text))  # a plain folder: Parquet files
