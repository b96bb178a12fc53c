"""SQLAlchemy tables: stored events and their per-handler deliveries; bulk replays, the rejection
ledger and console sessions.

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
    """Set while an attempt runs, in the database's clock; renewed by its worker's heartbeat until the outcome
    is written, so an expired lease means the worker died mid-attempt (or lost its heartbeat)."""
    lease_owner: Mapped[str | None] = mapped_column(String(100), default=None)
    """Who holds the lease: `<worker name>/<token>`, one per job run; the sweep skips a lease whose holder still
    heartbeats in Redis (`workers.lease.holder_key`)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_duration_ms: Mapped[float | None] = mapped_column(default=None)

    __table_args__ = (
        UniqueConstraint("event_id", "handler"),
        Index("ix_deliveries_status_next", "status", "next_attempt_at"),
        # `GET /v1/deliveries` and the console's dead letters: keyset pages on (updated_at, id), newest first.
        Index("ix_deliveries_updated", "updated_at", "id"),
        Index("ix_deliveries_status_updated", "status", "updated_at", "id"),
        Index("ix_deliveries_handler_status_updated", "handler", "status", "updated_at", "id"),
    )


class ReplayStatus:
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    ALL = (QUEUED, RUNNING, DONE)


class ReplayRow(Base):
    """A bulk replay (`POST /v1/replays`): its filter, its planned counts and how far it got.

    The chosen deliveries are frozen in `replay_items` when it is created, so
    the counts it answers with are exactly what it then replays, and a worker
    that dies mid-way resumes after `position`.
    """

    __tablename__ = "replays"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    filter: Mapped[str] = mapped_column(Text)
    """The filter as given (JSON), for the record."""
    events: Mapped[int] = mapped_column(Integer)
    deliveries: Mapped[int] = mapped_column(Integer)
    queued: Mapped[int] = mapped_column(Integer, default=0)
    """Deliveries queued again so far."""
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    """The last `replay_items.delivery_id` done: batches resume after it."""
    runner: Mapped[str] = mapped_column(String(32))
    """The token of the one job chain allowed to run it; the sweep replaces it when that chain is lost."""
    created_by: Mapped[str] = mapped_column(String(200))
    """The API key's name (never the key), or `cli`."""
    request_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    """Touched by every batch: a replay not done whose row is old lost its job, and the sweep queues it again."""
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    __table_args__ = (Index("ix_replays_status_updated", "status", "updated_at"),)


class ReplayItemRow(Base):
    """One delivery a bulk replay chose; deleted when the replay is done."""

    __tablename__ = "replay_items"

    replay_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    delivery_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36))
    """Kept so the planned event count is a count of this table alone."""


class RejectionRow(Base):
    """The rejection ledger: refused ingest requests, merged per (source, code, client_ip) and second.

    Written in batches by the API process (`service.ingest.rejections`), never
    on the request's path; no body is ever kept.
    """

    __tablename__ = "rejections"

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    """The path's source name as requested (configured or not), cut to 64 characters."""
    status: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(64))
    client_ip: Mapped[str] = mapped_column(String(45))
    """Empty when unknown, or for an overflow row that merged many addresses."""
    request_id: Mapped[str] = mapped_column(String(128))
    """The first merged request's id."""
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    count: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_rejections_received", "received_at", "id"),
        Index("ix_rejections_source_received", "source", "received_at", "id"),
        Index("ix_rejections_code_received", "code", "received_at", "id"),
    )


class ConsoleSessionRow(Base):
    """A signed-in console session, so the server can expire it and sign it out (a copied cookie dies too).

    Only the SHA-256 of the cookie's token is stored: reading this table does not give a session.
    """

    __tablename__ = "console_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_name: Mapped[str] = mapped_column(String(200))
    key_sha256: Mapped[str] = mapped_column(String(64))
    """The API key's digest: the session ends when that key leaves the configuration."""
    role: Mapped[str] = mapped_column(String(8))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_console_sessions_expires", "expires_at"),)


class ConsoleSecretRow(Base):
    """The console's cookie-signing secret when `[console] session_secret` is not set.

    Made once by whichever API process needs it first, then shared by every
    replica and kept across restarts.
    """

    __tablename__ = "console_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
