"""The database: engine, sessions, the declarative base and JSON-path expressions."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask, g
from sqlalchemy import JSON, DateTime, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import Numeric, String, TypeDecorator

JsonDocument = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime}


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _begin_sqlite(conn) -> None:
    """Start SQLite transactions ourselves (pysqlite's own handling is lazy and inconsistent).

    A read transaction that later writes must upgrade its lock, which in WAL mode fails at once
    when another writer committed since it began. Sessions opened for writing (``write=True``:
    form posts, API writes, CLI) therefore take the write lock at BEGIN and queue on
    busy_timeout; reading sessions use a plain BEGIN and never block anyone.
    """
    immediate = conn.get_execution_options().get("formloom_write")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _configure_sqlite(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # autocommit at driver level; BEGIN is ours
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["formloom.engine"] = engine
    app.extensions["formloom.sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    app.extensions["formloom.write_sessionmaker"] = sessionmaker(
        engine.execution_options(formloom_write=True), expire_on_commit=False)
    app.teardown_appcontext(_close_session)


def get_engine(app: Flask) -> Engine:
    return app.extensions["formloom.engine"]


def new_session(app: Flask, write: bool = False) -> Session:
    """A new session; ``write=True`` for work that writes (see :func:`_begin_sqlite`)."""
    return app.extensions["formloom.write_sessionmaker" if write else "formloom.sessionmaker"]()


def get_session() -> Session:
    """The session of the current request (views only); requests that may write get a writer."""
    from flask import current_app, request

    if "db_session" not in g:
        g.db_session = new_session(current_app, write=request.method not in ("GET", "HEAD", "OPTIONS"))
    return g.db_session


def _close_session(_exc) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


class json_value(ColumnElement):
    """The scalar at ``key`` of a JSON column, as text or as a number.

    Emits a literal path (``json_extract(data, '$.stage')`` / ``(data ->> 'stage')``) so that
    expression indexes are used; ``key`` must be a validated definition key.
    """

    inherit_cache = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("key", InternalTraversal.dp_string),
        ("numeric", InternalTraversal.dp_boolean),
    ]

    def __init__(self, column, key: str, numeric: bool = False):
        if not key.replace("_", "").isalnum() or not key.isascii():
            raise ValueError(f"Not a field key: {key!r}")
        self.column = column
        self.key = key
        self.numeric = numeric
        self.type = Numeric(asdecimal=False) if numeric else String()


@compiles(json_value)
def _json_value_default(element: json_value, compiler, **kw) -> str:
    col = compiler.process(element.column, **kw)
    expr = f"json_extract({col}, '$.{element.key}')"
    return f"CAST({expr} AS REAL)" if element.numeric else expr


@compiles(json_value, "postgresql")
def _json_value_pg(element: json_value, compiler, **kw) -> str:
    col = compiler.process(element.column, **kw)
    expr = f"({col} ->> '{element.key}')"
    return f"CAST({expr} AS NUMERIC)" if element.numeric else expr
