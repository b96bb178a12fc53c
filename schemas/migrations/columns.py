"""The column kinds the revisions repeat, several columns a line.

Revisions are history: each of these must build exactly the DDL it built when
the revisions using it were written, so none of them ever changes (a new kind
is a new function).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

import schemas.tables


def serial(name: str) -> sa.Column[int]:
    """The autoincrementing key: BIGINT on PostgreSQL, INTEGER on SQLite (only that auto-increments there)."""
    return sa.Column(name, sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False)


def strings(**lengths: int) -> list[sa.Column[str]]:
    """NOT NULL `VARCHAR(length)` columns, in the order given."""
    return [sa.Column(name, sa.String(length=length), nullable=False) for name, length in lengths.items()]


def integers(*names: str) -> list[sa.Column[int]]:
    """NOT NULL `INTEGER` columns."""
    return [sa.Column(name, sa.Integer(), nullable=False) for name in names]


def timestamps(*names: str, nullable: bool = False) -> list[sa.Column[datetime]]:
    """Aware UTC timestamp columns (`schemas.tables.UTCDateTime`), NOT NULL unless `nullable`."""
    return [sa.Column(name, schemas.tables.UTCDateTime(timezone=True), nullable=nullable) for name in names]
