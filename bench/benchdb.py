"""One fresh database for a benchmark: a SQLite file in a temp dir, or a private PostgreSQL schema.

Shared by the benchmarks in this folder (run as scripts from the repository root, so this module
is importable as ``benchdb``). Not a test helper: it imports nothing from ``tests/``.
"""
from __future__ import annotations

import secrets
import shutil
import tempfile

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker


class Database:
    def __init__(self, database_url: str | None):
        from formloom.platform.db import make_engine

        self.tmpdir = tempfile.mkdtemp(prefix="formloom-bench-")
        self.schema = None
        self.admin_engine = None
        if database_url:
            base = make_url(database_url)
            if not base.drivername.startswith("postgresql"):
                raise SystemExit("--database-url must be a PostgreSQL URL; the default is SQLite.")
            self.admin_engine = create_engine(base, isolation_level="AUTOCOMMIT")
            self.schema = f"bench_{secrets.token_hex(4)}"
            with self.admin_engine.connect() as conn:
                conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            url = base.update_query_dict({"options": f"-csearch_path={self.schema}"}).render_as_string(
                hide_password=False)
        else:
            url = f"sqlite:///{self.tmpdir}/bench.db"
        self.engine = make_engine(url)
        self.reader = sessionmaker(self.engine, expire_on_commit=False)
        self.writer = sessionmaker(self.engine.execution_options(formloom_write=True), expire_on_commit=False)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def describe(self) -> str:
        with self.engine.connect() as conn:
            if self.backend == "sqlite":
                return f"SQLite {conn.exec_driver_sql('select sqlite_version()').scalar()} (temp-dir file)"
            version = conn.exec_driver_sql("show server_version").scalar().split()[0]
            return f"PostgreSQL {version} (private schema {self.schema}, dropped after)"

    def close(self) -> None:
        self.engine.dispose()
        if self.admin_engine is not None:
            with self.admin_engine.connect() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
            self.admin_engine.dispose()
        shutil.rmtree(self.tmpdir, ignore_errors=True)
