"""events keep the vendor's event id and the request headers

Create Date: 2026-11-24 09:00:00

Both nullable: events stored before this revision have neither (the read
API shows their headers as `{}`, handlers see `None` and `{}`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("events", sa.Column("vendor_event_id", sa.String(length=255), nullable=True))
    op.add_column("events", sa.Column("headers", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("headers")
        batch_op.drop_column("vendor_event_id")
