"""The Alembic migrations create exactly the tables the models describe."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from formloom.platform.db import Base, get_engine
from formloom.platform.migrate import current_revision


def test_migrated_database_matches_the_models(app):
    engine = get_engine(app)
    assert current_revision(engine) == "0008"
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        assert compare_metadata(context, Base.metadata) == []
