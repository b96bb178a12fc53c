"""SQLAlchemy tables: stored events and their per-handler deliveries.

One schema for SQLite and PostgreSQL. Payloads are kept as the exact JSON
text the vendor sent (TEXT, not JSONB: JSONB rejects `\\u0000` and
re-orders keys). Timestamps are timezone-aware UTC on both engines.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigIntKey = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every engine."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class EventStatus:
    STORED = "stored"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"
    ALL = (STORED, PROCESSING, PROCESSED, FAILED)


class DeliveryStatus:
    PENDING = "pending"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    DEAD = "dead"
    ALL = (PENDING, RETRYING, SUCCEEDED, DEAD)
    OPEN = (PENDING, RETRYING)


class EventRow(Base):
    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    """Store order: the live stream's `Last-Event-ID`, so a reconnect misses nothing."""
    id: Mapped[str] = mapped_column(String(36), unique=True)
    """UUIDv7 given at ingest: time-ordered, so keyset pages follow arrival."""
    source: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(128))
    resource: Mapped[str] = mapped_column(String(128))
    """First part of the action, so `LOCATION:*` is an index lookup."""
    verb: Mapped[str] = mapped_column(String(128))
    """Last part of the action, so `*:DELETED` is an index lookup."""
    sent_at: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str] = mapped_column(String(128))
    payload: Mapped[str] = mapped_column(Text)
    """The exact JSON text of the payload: `data.payload` for GuestXM's envelope, else the whole body."""
    body: Mapped[str] = mapped_column(Text)
    """The exact request body, for audit and re-parsing."""
    vendor_event_id: Mapped[str | None] = mapped_column(String(255), default=None)
    """The vendor's own event id (`evt_...`, `X-GitHub-Delivery`, `webhook-id`), when the source locates one."""
    headers: Mapped[str | None] = mapped_column(Text, default=None)
    """The request headers kept (a JSON object, lower-case names; no credentials or signatures)."""

    __table_args__ = (
        UniqueConstraint("source", "fingerprint"),
        Index("ix_events_received", "received_at", "id"),
        Index("ix_events_source_received", "source", "received_at", "id"),
        Index("ix_events_action_received", "action", "received_at", "id"),
        Index("ix_events_resource_received", "resource", "received_at", "id"),
        Index("ix_events_verb_received", "verb", "received_at", "id"),
        Index("ix_events_status_received", "status", "received_at", "id"),
    )


class DeliveryRow(Base):
    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), ForeignKey("events.id", ondelete="CASCADE"))
    handler: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Attempts started; counted before the handler runs, so a crash still counts."""
    max_attempts: Mapped[int] = mapped_column(Integer)
    """Attempt number at which the delivery goes dead; a replay raises it."""
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    """Set while an attempt runs; an expired lease means the worker died mid-attempt."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_duration_ms: Mapped[float | None] = mapped_column(default=None)

    __table_args__ = (
        UniqueConstraint("event_id", "handler"),
        Index("ix_deliveries_status_next", "status", "next_attempt_at"),
    )
