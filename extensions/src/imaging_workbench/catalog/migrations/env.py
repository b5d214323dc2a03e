"""Alembic's entry point: run the revisions on the connection `alembic_config` was given.

The caller owns the transaction (ensure_schema upgrades and seals the audit trail in one), so
nothing here commits. target_metadata lets `command.revision(..., autogenerate=True)` compare
the models with a database at the previous revision."""

from alembic import context

from imaging_workbench.catalog.engine import catalog_metadata

context.configure(connection=context.config.attributes["connection"], target_metadata=catalog_metadata(),
                  render_as_batch=True)  # SQLite alters columns by copying the table
with context.begin_transaction():
    context.run_migrations()
