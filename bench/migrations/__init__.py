"""The store's schema changes, one Alembic script each under ``versions/`` (``bench.migrate`` runs them).

To change the schema: change the tables in ``bench/store.py`` (a new store is made from them) and add the
next script here, ``NNNN_what.py`` with ``revision = "NNNN"`` and ``down_revision`` the one before, whose
``upgrade()`` brings an existing store to the same tables; ``tests/test_migrate.py`` checks that the two agree
and opens the committed store of every earlier schema.
"""
