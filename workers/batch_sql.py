"""How the worker's batch statements are written: one round trip each, in the form each database runs fastest.

PostgreSQL gets one short statement over `unnest()` of array parameters: its
text is the same whatever the batch size, so psycopg's query cache and
PostgreSQL's plan cache both hit. (A multi-row VALUES list is a new, long
statement per batch size that psycopg re-parses every time: a third of a
worker's time on 100-event batches.) SQLite gets SQLAlchemy's Core
`insertmanyvalues` and executemany, which it runs in-process.

The statements themselves sit beside the step that runs them
(`workers.store`, `workers.record`); each builds its text once, at import,
from one column list, so a new column is one line there and the text stays
byte-for-byte stable between runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

Columns = tuple[tuple[str, str], ...]
"""(column name, PostgreSQL element type of its array parameter), in statement order."""


def postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def names(columns: Columns) -> str:
    """`a, b, c`: a column list, or the column aliases of an `unnest()`."""
    return ", ".join(name for name, _ in columns)


def unnest(columns: Columns, prefix: str = "") -> str:
    """`unnest(CAST(:a AS varchar[]), ...)`: one array parameter per column, named `prefix + column`."""
    return "unnest(" + ", ".join(f"CAST(:{prefix}{name} AS {kind}[])" for name, kind in columns) + ")"


def arrays(rows: Sequence[dict[str, Any]], columns: Columns, prefix: str = "") -> dict[str, list[Any]]:
    """The parameters of `unnest(columns, prefix)`: rows turned into one list per column."""
    return {prefix + name: [row[name] for row in rows] for name, _ in columns}
