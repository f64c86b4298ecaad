"""Comparison groups' pairings and the machine-speed track (cnnbench 0.1 added them to schema 2 on write).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    have = set(sa.inspect(op.get_bind()).get_table_names())
    if "pairings" not in have:
        op.create_table(
            "pairings",
            sa.Column("result_id", sa.Integer, sa.ForeignKey("results.id"), primary_key=True),
            sa.Column("group_label", sa.Text, nullable=False),
            sa.Column("reference", sa.Text, nullable=False),
            sa.Column("members", sa.Integer, nullable=False),
            sa.Column("rounds", sa.Integer, nullable=False),
            sa.Column("ratio", sa.Float),
            sa.Column("ratio_ci_low", sa.Float),
            sa.Column("ratio_ci_high", sa.Float),
            sa.Column("p_value", sa.Float),
        )
    if "track" not in have:
        op.create_table(
            "track",
            sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
            sa.Column("at", sa.Float, primary_key=True),
            sa.Column("gflop_s", sa.Float, nullable=False),
        )


def downgrade() -> None:
    op.drop_table("track")
    op.drop_table("pairings")
