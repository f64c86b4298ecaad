"""A group member's waits for its threads after its blocks and the ones its threads outlasted, and whether it read
its weights from the group builder's pages (issue 11).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = {"settle_waits": sa.BigInteger, "settle_capped": sa.BigInteger, "weights_shared": sa.Boolean}


def upgrade() -> None:
    have = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("results")}
    for name, kind in COLUMNS.items():
        if name not in have:
            op.add_column("results", sa.Column(name, kind))


def downgrade() -> None:
    with op.batch_alter_table("results") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
