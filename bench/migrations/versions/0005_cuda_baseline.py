"""A CUDA case's allocated bytes when its memory window opened (after warm-up) and its peak above them (issue 12).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = ("cuda_allocated_baseline_bytes", "cuda_peak_allocated_delta_bytes")


def upgrade() -> None:
    have = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("results")}
    for name in COLUMNS:
        if name not in have:
            op.add_column("results", sa.Column(name, sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("results") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
