"""Alembic migrations of the Clearance database (run with ``audit.migrate.upgrade(url)``)."""
