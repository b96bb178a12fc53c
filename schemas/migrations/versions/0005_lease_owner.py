"""deliveries.lease_owner: which worker holds a lease

Create Date: 2026-11-30 16:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("lease_owner", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("lease_owner")
