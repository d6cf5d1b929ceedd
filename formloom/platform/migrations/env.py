"""Alembic environment: runs against the engine handed over by ``formloom.platform.migrate``."""
from __future__ import annotations

from alembic import context

from formloom.platform import models  # noqa: F401  (registers the tables)
from formloom.platform.db import Base

config = context.config


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    # Per-field expression indexes are created at runtime from definitions; not Alembic's.
    return not (type_ == "index" and name and name.startswith("ixf_"))


def run_migrations() -> None:
    engine = config.attributes["engine"]
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            include_object=include_object,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        context.run_migrations()


run_migrations()
