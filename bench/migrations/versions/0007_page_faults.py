"""A case's minor page faults per timed iteration and the price of a fresh page right after its group (issue 11).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = ("page_faults_per_iter", "fresh_page_us")


def upgrade() -> None:
    have = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("results")}
    for name in COLUMNS:
        if name not in have:
            op.add_column("results", sa.Column(name, sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("results") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
