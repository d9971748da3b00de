"""The DuckDB store: schema, migrations, and the one-unit-of-work connection rule.

DuckDB allows one read-write process *or* many read-only ones, and an open
reader blocks writers in other processes. So every call here opens the file
for one unit of work (a query, or a batch write in one transaction) and
closes it; opening retries with back-off while another process holds the
lock and says so after a few seconds. Nothing keeps a connection open.

Bulk data goes in and out through Arrow/NumPy (never row-by-row loops).
Embeddings are `FLOAT[]` columns; `matrix_to_arrow` / `arrow_to_matrix`
convert between them and 2-D float32 arrays.
"""

from __future__ import annotations

import random
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import duckdb
import numpy as np
import pyarrow as pa

from data_catalog.errors import AtlasError

from ..diskspace import disk_full, is_disk_full


class StoreError(AtlasError):
    """The store is missing, too new, or unusable."""


class StoreMissing(StoreError):
    pass


class StoreBusy(StoreError):
    pass


class StoreDamaged(StoreError):
    """The store file fails DuckDB's checksums (or cannot be read back): nothing writes into it."""


from .schema import MIGRATIONS, SCHEMA_VERSION

_LOCK_WORDS = ("lock", "Conflicting", "being used by another")
_DAMAGE_WORDS = ("Corrupt database file", "checksum", "not a valid DuckDB database file", "Could not read enough bytes",
                 "Failed to load metadata", "database has been invalidated")
_PROBED: dict[tuple, str | None] = {}  # store file version -> None (probed, sound) or the damage found


def _file_version(path: Path) -> tuple:
    """Which version of the file a probe saw: a restored copy or a new write gets probed again."""
    try:
        st = path.stat()
    except OSError:
        return (str(path),)
    return (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)


def is_damage(exc: BaseException) -> bool:
    """DuckDB's words for a file that fails its checksums or cannot be read back."""
    return isinstance(exc, (duckdb.Error, OSError)) and (
        isinstance(exc, (duckdb.SerializationException, duckdb.InternalException))
        or any(w in str(exc) for w in _DAMAGE_WORDS))


def damaged(path: Path, exc: BaseException | str) -> StoreDamaged:
    """The one-line error for a damaged store, with the ways to recover."""
    what = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return StoreDamaged(
        f"store {path} is damaged ({what}): dfatlas does not write into it. Recover by restoring a copy of that file, "
        f"or start a new store: move it aside (mv {path} {path}.damaged) and re-run the stages — the workspace's "
        "run folders are reused (finished runs are not trained again), faces, embeddings and maps are computed "
        "again")


def probe(con: duckdb.DuckDBPyConnection, full: bool = False) -> None:
    """Read every table back so that DuckDB checks the checksums of the blocks it reads: the scalar
    columns (quick: ids, statuses, numbers — a tenth of a second on a store of a million rows), or every
    column with `full` (thumbnails and embeddings too: seconds per GB). Raises the DuckDB error found."""
    cols = con.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                       "WHERE table_schema = 'main' AND table_name IN (SELECT table_name FROM "
                       "information_schema.tables WHERE table_type = 'BASE TABLE') "
                       "ORDER BY table_name, ordinal_position").fetchall()
    by_table: dict[str, list[str]] = {}
    for table, column, dtype in cols:
        bulky = dtype.upper() in ("BLOB", "BYTEA") or dtype.endswith("]") or dtype.upper().startswith(("STRUCT", "MAP"))
        if full or not bulky:
            by_table.setdefault(table, []).append(column)
    for table, columns in by_table.items():
        aggs = ", ".join(f'min("{c}")' for c in columns)
        con.execute(f'SELECT count(*), {aggs} FROM "{table}"').fetchall()


def _is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, (duckdb.IOException, duckdb.ConnectionException)) and any(
        w in str(exc) for w in _LOCK_WORDS
    )


class Store:
    """A handle on the store file; every method opens and closes it."""

    def __init__(self, path: str | Path, read_only: bool = False, retry_seconds: float = 120.0,
                 announce_after: float = 3.0):
        self.path = Path(path)
        self.read_only = read_only
        self.retry_seconds = retry_seconds
        self.announce_after = announce_after
        self._checked = False
        self._pending_bytes = 0  # Arrow bytes inserted in the open transaction (a full disk's estimate)

    # -- connections ---------------------------------------------------------
    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One unit of work: open, check the schema, yield, close."""
        if self.read_only and not self.path.exists():
            raise StoreMissing(
                f"no store at {self.path} yet: run `dfatlas demo`, or `dfatlas catalog show --config CONFIG`"
            )
        con = self._open_with_retry()
        try:
            try:
                if not self._checked:
                    self._check_schema(con)
                    self._check_integrity(con)
                    self._checked = True
                yield con
            except (duckdb.Error, OSError) as exc:
                if is_damage(exc):
                    _PROBED[_file_version(self.path)] = str(exc)
                    raise damaged(self.path, exc) from None
                if not self.read_only and is_disk_full(exc):
                    raise disk_full(self.path, self._pending_bytes, exc) from None
                raise
        finally:
            try:
                con.close()
            except duckdb.Error:
                pass

    def _check_integrity(self, con: duckdb.DuckDBPyConnection) -> None:
        """The quick probe, once per process and version of the store file: a damaged store is refused at
        open, before anything is written into it."""
        key = _file_version(self.path)
        if key not in _PROBED:
            probe(con)
            _PROBED[key] = None
        elif _PROBED[key] is not None:
            raise damaged(self.path, _PROBED[key])

    def verify(self) -> None:
        """The full probe (every column of every table); `StoreDamaged` when a block fails its checksum."""
        with self.connect() as con:
            probe(con, full=True)

    def _open_with_retry(self) -> duckdb.DuckDBPyConnection:
        start = time.monotonic()
        delay = 0.02
        announced = False
        while True:
            try:
                if not self.read_only:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                return duckdb.connect(str(self.path), read_only=self.read_only)
            except (duckdb.Error, OSError) as exc:
                if is_damage(exc):
                    _PROBED[_file_version(self.path)] = str(exc)
                    raise damaged(self.path, exc) from None
                if is_disk_full(exc):
                    raise disk_full(self.path, None, exc) from None
                if not _is_lock_error(exc):
                    raise StoreError(f"cannot open store {self.path}: {exc}") from None
                waited = time.monotonic() - start
                if waited > self.retry_seconds:
                    raise StoreBusy(
                        f"store {self.path} stayed locked by another process for {waited:.0f} s; "
                        "is a long job holding it? try again when it has finished"
                    ) from None
                if not announced and waited > self.announce_after:
                    print(f"store {self.path.name} is busy in another process; retrying ...", file=sys.stderr)
                    announced = True
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)

    def _check_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        has_table = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        ).fetchall()[0][0]  # fetchall: DuckDB 2 refuses con.sql() while a fetchone() result is unfinished
        version = con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] if has_table else 0
        version = version or 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path} was written by a newer dfatlas (schema v{version}; this one knows "
                f"v{SCHEMA_VERSION}): upgrade dfatlas or use another workspace"
            )
        if version == SCHEMA_VERSION:
            return
        if self.read_only:
            if version == 0:
                raise StoreMissing(f"store {self.path} is empty: run `dfatlas demo` or a pipeline command first")
            raise StoreError(
                f"store {self.path} has schema v{version}; run any writing dfatlas command to migrate it to v{SCHEMA_VERSION}"
            )
        con.execute("BEGIN TRANSACTION")
        try:
            if not has_table:
                con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP DEFAULT current_timestamp)")
            for v in range(version, SCHEMA_VERSION):
                con.execute(MIGRATIONS[v])
                con.execute("INSERT INTO schema_version (version) VALUES (?)", [v + 1])
            con.execute("COMMIT")
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One batch write: everything inside commits together or not at all."""
        if self.read_only:
            raise StoreError("this store handle is read-only")
        with self.connect() as con:
            self._pending_bytes = 0
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                try:  # a failed COMMIT has ended the transaction already: keep its error, not ROLLBACK's
                    con.execute("ROLLBACK")
                except duckdb.Error:
                    pass
                raise

    # -- convenience for single units of work --------------------------------
    def execute(self, sql: str, params: list | None = None) -> None:
        with self.transaction() as con:
            con.execute(sql, params or [])

    @staticmethod
    @contextmanager
    def _registered(con: duckdb.DuckDBPyConnection, tables: dict | None):
        """Make Arrow tables (e.g. a list of ids to join against) visible to one query."""
        for name, table in (tables or {}).items():
            con.register(name, table)
        try:
            yield con
        finally:
            for name in tables or {}:
                con.unregister(name)

    def df(self, sql: str, params: list | None = None, tables: dict | None = None):
        """Run one query and return a pandas DataFrame; `tables` names Arrow
        tables the query may read (registered for this query only)."""
        with self.connect() as con, self._registered(con, tables):
            return con.execute(sql, params or []).df()

    def arrow(self, sql: str, params: list | None = None, tables: dict | None = None) -> pa.Table:
        with self.connect() as con, self._registered(con, tables):
            try:
                return con.sql(sql, params=params or None).to_arrow_table()
            except duckdb.ResourceInUseException:
                # DuckDB 2.0 refuses `sql()` while an earlier result on the
                # connection is unfinished; the DB-API path always works.
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    return con.execute(sql, params or []).to_arrow_table()

    def scalar(self, sql: str, params: list | None = None) -> Any:
        with self.connect() as con:
            row = con.execute(sql, params or []).fetchone()
            return None if row is None else row[0]

    def insert(self, table: str, data, replace: bool = False, con: duckdb.DuckDBPyConnection | None = None) -> int:
        """Bulk insert a DataFrame / Arrow table (columns named as the table's).

        `replace=True` uses INSERT OR REPLACE on the table's primary key.
        Pass `con` to write inside an open `transaction()`.
        """
        if con is None:
            with self.transaction() as own:
                return self.insert(table, data, replace=replace, con=own)
        if isinstance(data, dict):
            data = pa.table(data)
        n = data.num_rows if isinstance(data, pa.Table) else len(data)
        if n == 0:
            return 0
        cols = ", ".join(f'"{c}"' for c in data.column_names) if isinstance(data, pa.Table) else ", ".join(
            f'"{c}"' for c in data.columns)
        self._pending_bytes += data.nbytes if isinstance(data, pa.Table) else int(data.memory_usage(deep=True).sum())
        view = f"_incoming_{table}"
        con.register(view, data)
        try:
            verb = "INSERT OR REPLACE INTO" if replace else "INSERT INTO"
            con.execute(f"{verb} {table} ({cols}) SELECT {cols} FROM {view}")
        finally:
            con.unregister(view)
        return n

    def tables(self) -> list[str]:
        with self.connect() as con:
            return [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]

    def with_retry(self, fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        with self.connect() as con:
            return fn(con)


def matrix_to_arrow(matrix: np.ndarray) -> pa.Array:
    """A 2-D float array as an Arrow list column (for FLOAT[] columns)."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    n, d = matrix.shape
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.reshape(-1)))


def arrow_to_matrix(column) -> np.ndarray:
    """An Arrow list column of equal-length float lists as a 2-D float32 array."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    n = len(column)
    if n == 0:
        return np.zeros((0, 0), dtype=np.float32)
    if isinstance(column, pa.FixedSizeListArray):
        return column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(n, -1)
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    if values.size % n:
        raise StoreError("embedding rows have different lengths")
    return values.reshape(n, values.size // n)
