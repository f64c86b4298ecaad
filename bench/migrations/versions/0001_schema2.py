"""Schema 2 as cnnbench 0.1 first wrote it: cnnbench_meta, runs, results, samples.

The base of the chain: a store without an alembic_version table is stamped here (or at 0002 when it already
has pairings and track), then upgraded. No store is built from nothing by migrations: a new one is made
from bench.store's tables and stamped at the head.

Revision ID: 0001
Revises:
"""

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
