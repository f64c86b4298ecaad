"""Shards (issue 14): one row per shard of a run split over several runners, and the machine of each result and of
each point of the machine-speed track (a sharded run's machines probe each their own speed).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table in ("results", "track"):
        if "machine" not in {column["name"] for column in inspector.get_columns(table)}:
            op.add_column(table, sa.Column("machine", sa.Text))
    if "shards" not in set(inspector.get_table_names()):
        op.create_table(
            "shards",
            sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
            sa.Column("shard", sa.Integer, primary_key=True),  # K of K/N, 1-based
            sa.Column("shards", sa.Integer, nullable=False),  # N
            sa.Column("machine", sa.Text, nullable=False),
            sa.Column("environment_json", sa.Text, nullable=False),
            sa.Column("calibration_json", sa.Text, nullable=False),
            sa.Column("job_id", sa.Text),
            sa.Column("cases_total", sa.Integer, nullable=False),
            sa.Column("started_at", sa.Float, nullable=False),
            sa.Column("finished_at", sa.Float),
        )


def downgrade() -> None:
    op.drop_table("shards")
    for table in ("track", "results"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("machine")
