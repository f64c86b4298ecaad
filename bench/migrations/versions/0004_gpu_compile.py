"""GPU telemetry per case and a compiled case's Dynamo counters (issue 12).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    have = set(sa.inspect(op.get_bind()).get_table_names())
    if "gpu_states" not in have:
        op.create_table(
            "gpu_states",
            sa.Column("result_id", sa.Integer, sa.ForeignKey("results.id"), primary_key=True),
            sa.Column("at", sa.String(8), primary_key=True),  # "start" or "end" of sampling
            sa.Column("sm_clock_mhz", sa.BigInteger, nullable=False),
            sa.Column("mem_clock_mhz", sa.BigInteger, nullable=False),
            sa.Column("power_w", sa.Float, nullable=False),
            sa.Column("temperature_c", sa.BigInteger, nullable=False),
            sa.Column("clock_event_reasons", sa.Text, nullable=False),
            sa.Column("other_processes", sa.BigInteger, nullable=False),
        )
    if "compile_counts" not in have:
        op.create_table(
            "compile_counts",
            sa.Column("result_id", sa.Integer, sa.ForeignKey("results.id"), primary_key=True),
            sa.Column("graphs", sa.BigInteger, nullable=False),
            sa.Column("graph_breaks", sa.BigInteger, nullable=False),
            sa.Column("recompiles", sa.BigInteger, nullable=False),
        )


def downgrade() -> None:
    op.drop_table("compile_counts")
    op.drop_table("gpu_states")
