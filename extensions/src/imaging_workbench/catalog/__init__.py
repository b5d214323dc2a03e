"""The catalog: datasets, accounts, grants and the keyed, chained audit trail, in one SQL database
whose schema the Alembic revisions in migrations/ make."""
