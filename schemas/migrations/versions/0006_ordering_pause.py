"""ordering keys on deliveries, paused handlers

Create Date: 2026-11-30 16:30:00

The ordering columns are nullable: deliveries stored before this revision have
no key and run as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import schemas.tables
from schemas.migrations.columns import strings, timestamps

# The predicates as they were at this revision (not imported: a later change must not rewrite history).
ORDERING_OPEN = "ordering_key IS NOT NULL AND status IN ('pending', 'retrying')"
ORDERING_SUCCEEDED = "ordering_key IS NOT NULL AND status = 'succeeded'"

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ordering_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("ordering_sent_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("ordering_received_at", schemas.tables.UTCDateTime(timezone=True), nullable=True))
        for name, where in (
            ("ix_deliveries_ordering_open", ORDERING_OPEN),
            ("ix_deliveries_ordering_succeeded", ORDERING_SUCCEEDED),
        ):
            batch_op.create_index(
                name,
                ["ordering_key", "handler", "ordering_sent_at"],
                unique=False,
                postgresql_where=sa.text(where),
                sqlite_where=sa.text(where),
            )
    op.create_table(
        "handler_pauses",
        *strings(handler=200, paused_by=200),
        *timestamps("paused_at"),
        sa.PrimaryKeyConstraint("handler", name=op.f("pk_handler_pauses")),
    )


def downgrade() -> None:
    op.drop_table("handler_pauses")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_ordering_succeeded")
        batch_op.drop_index("ix_deliveries_ordering_open")
        batch_op.drop_column("ordering_received_at")
        batch_op.drop_column("ordering_sent_at")
        batch_op.drop_column("ordering_key")
