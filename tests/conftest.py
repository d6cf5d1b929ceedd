"""Fixtures: each test gets a fresh app on SQLite, and again on PostgreSQL when configured.

Set FORMLOOM_TEST_DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) to run
every database test on PostgreSQL too; the tests work in a schema of their own and drop it.
"""
from __future__ import annotations

import os
import shutil
import uuid
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from formloom import create_app
from formloom.platform import auth, migrate
from formloom.platform.db import Base, make_engine, new_session
from tests.factories import make_pipeline_app, make_quote_app, make_sales_app, make_user

PG_URL = os.environ.get("FORMLOOM_TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A migrated SQLite database, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "formloom.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_url():
    """A PostgreSQL schema of this test run's own, migrated once and dropped at the end."""
    if not PG_URL:
        yield None
        return
    schema = f"formloom_test_{uuid.uuid4().hex[:10]}"
    admin_engine = create_engine(PG_URL)
    with admin_engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin_engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin_engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path, sqlite_template):
    if request.param == "sqlite":
        target = tmp_path / "formloom.db"
        shutil.copy(sqlite_template, target)
        return f"sqlite:///{target}"
    url = request.getfixturevalue("pg_url")
    if url is None:
        pytest.skip("PostgreSQL run: set FORMLOOM_TEST_DATABASE_URL (CI sets it)")
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def app(tmp_path, database_url):
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": database_url,
                      "TESTING": True, "SECRET_KEY": "test-secret"})
    yield app
    app.extensions["formloom.engine"].dispose()


@pytest.fixture
def db(app):
    session = new_session(app)
    yield session
    session.close()


@pytest.fixture
def admin(db):
    user = make_user(db, "admin", admin=True, display_name="Ada Admin")
    db.commit()
    return user


@pytest.fixture
def sales(db, admin):
    return make_sales_app(db, admin)


@pytest.fixture
def rep(db, sales):
    """A member with access to the sales app."""
    user = make_user(db, "rep", display_name="Rita Rep")
    auth.grant_app(db, user, sales)
    db.commit()
    return user


@pytest.fixture
def outsider(db, sales):
    """A member without access to the sales app."""
    user = make_user(db, "outsider", display_name="Otto Outsider")
    db.commit()
    return user


@pytest.fixture
def quotes(db, admin, rep):
    """The quotes app (customers and quotes, using every form-engine feature), open to the rep."""
    app = make_quote_app(db, admin)
    auth.grant_app(db, rep, app)
    db.commit()
    return app


@pytest.fixture
def pipes(db, admin, rep):
    """The pipeline app (companies, deals and the deal pipeline), open to the rep."""
    app = make_pipeline_app(db, admin)
    auth.grant_app(db, rep, app)
    db.commit()
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def bearer(db, user) -> dict:
    _, secret = auth.create_token(db, user, "test")
    db.commit()
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def admin_headers(db, admin):
    return bearer(db, admin)


@pytest.fixture
def rep_headers(db, rep):
    return bearer(db, rep)


@pytest.fixture
def outsider_headers(db, outsider):
    return bearer(db, outsider)


# --- the CRM template with a small sales team (East: reps li.wei and emma, manager zhang.min) ---

@pytest.fixture
def crm(db, admin):
    from formloom.templates_library import install

    app = install(db, admin)
    db.commit()
    return app


@pytest.fixture
def team(db, crm):
    li, emma, boss = (make_user(db, name, display_name=name) for name in ("li.wei", "emma", "zhang.min"))
    auth.grant_app(db, li, crm)
    auth.grant_app(db, emma, crm)
    auth.grant_app(db, boss, crm, role="manager")
    auth.add_team(db, "east", "East", boss, [li, emma])
    db.commit()
    return li, emma, boss
