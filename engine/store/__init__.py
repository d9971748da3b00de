"""The DuckDB store: the only package that writes SQL.

- `connection`: the `Store` handle and the one-unit-of-work connection rule;
- `schema`: tables and migrations;
- `tables`: one Arrow builder per table the engine writes in bulk;
- one module of named readers and writers per part of the data
  (`catalog`, `faces`, `runs`, `embeddings`, `predictions`, `projections`,
  `jobs`, `analyses`), shared by the engine and the dashboard.

Callers outside this package never write SQL text: they call these functions.
"""

from .connection import Store, StoreBusy, StoreDamaged, StoreError, StoreMissing, arrow_to_matrix, matrix_to_arrow
from .schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["Store", "StoreBusy", "StoreDamaged", "StoreError", "StoreMissing", "arrow_to_matrix", "matrix_to_arrow", "MIGRATIONS",
           "SCHEMA_VERSION"]
