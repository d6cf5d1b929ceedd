"""The ``formloom`` command line."""
from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Iterable
from typing import BinaryIO

import click
from sqlalchemy import select

from formloom.platform import auth, migrate
from formloom.platform.db import get_engine, new_session
from formloom.platform.errors import FormloomError
from formloom.platform.models import App, AppMember, User


class Context:
    def __init__(self, instance: str | None):
        self.instance = instance
        self._app = None

    @property
    def app(self):
        if self._app is None:
            from formloom.platform.app import create_app

            self._app = create_app({"INSTANCE_PATH": self.instance} if self.instance else None)
        return self._app


pass_ctx = click.make_pass_decorator(Context)


@click.group()
@click.option("--instance", envvar="FORMLOOM_INSTANCE_PATH", default=None,
              help="Instance folder (settings, SQLite database). Default: ./instance")
@click.pass_context
def main(click_ctx: click.Context, instance: str | None) -> None:
    """Formloom: forms and workflows defined as data."""
    click_ctx.obj = Context(instance)


def _fail(exc: FormloomError) -> None:
    click.echo(f"Error: {exc.message}", err=True)
    for path, messages in exc.field_messages().items():
        for message in messages:
            click.echo(f"  {path}: {message}", err=True)
    sys.exit(1)


@main.command()
@pass_ctx
def init(ctx: Context) -> None:
    """Create the database or upgrade it to this version."""
    migrate.upgrade(get_engine(ctx.app))
    click.echo(f"Database ready: {_safe_url(ctx.app.config['DATABASE_URL'])}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@main.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.argument("username")
@click.option("--password", default=None, help="Password (asked for when omitted; generated with --generate)")
@click.option("--generate", is_flag=True, help="Generate a password and print it")
@click.option("--admin", is_flag=True, help="Give the user the admin role")
@click.option("--name", "display_name", default=None, help="Display name")
@click.option("--email", default=None)
@click.option("--app", "app_keys", multiple=True, help="Give a member access to this app (repeatable)")
@pass_ctx
def user_create(ctx: Context, username: str, password: str | None, generate: bool, admin: bool,
                display_name: str | None, email: str | None, app_keys: tuple[str, ...]) -> None:
    """Create a user."""
    if generate:
        password = secrets.token_urlsafe(12)
    elif password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with ctx.app.app_context():
        session = new_session(ctx.app, write=True)
        try:
            created = auth.create_user(session, username, password, admin=admin,
                                       display_name=display_name, email=email)
            for key in app_keys:
                app = session.scalar(select(App).where(App.key == key))
                if app is None:
                    raise FormloomError(f"There is no app '{key}'.")
                auth.grant_app(session, created, app)
            session.commit()
        except FormloomError as exc:
            _fail(exc)
        role = "admin" if admin else "member"
        click.echo(f"Created {role} '{username}'" + (f" with password: {password}" if generate else "."))


@user.command("away")
@click.argument("username")
@click.option("--until", "until", default=None,
              help="Back on this day (YYYY-MM-DD, UTC); assignment skips them until then")
@click.option("--back", is_flag=True, help="They are back: assignment includes them again")
@pass_ctx
def user_away(ctx: Context, username: str, until: str | None, back: bool) -> None:
    """Mark a user away (on leave) or back; rules that assign work skip users who are away."""
    from datetime import UTC, date, datetime, time

    if back == (until is not None):
        _fail(FormloomError("Give either --until YYYY-MM-DD or --back."))
    with ctx.app.app_context():
        session = new_session(ctx.app, write=True)
        person = session.scalar(select(User).where(User.username == username))
        if person is None:
            _fail(FormloomError(f"There is no user '{username}'."))
        if back:
            person.away_until = None
        else:
            try:
                person.away_until = datetime.combine(date.fromisoformat(until), time(), UTC)
            except ValueError:
                _fail(FormloomError(f"--until must be a date written YYYY-MM-DD, got '{until}'."))
        session.commit()
        click.echo(f"{username} is back." if back else f"{username} is away until {until}.")


@main.group()
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@click.argument("username")
@click.option("--name", default="cli", help="What the token is for")
@click.option("--scope", "scopes", multiple=True,
              help=f"Limit the token (repeatable): {', '.join(auth.TOKEN_SCOPES)} or {auth.APP_SCOPE_PREFIX}<app key>. "
                   "Without any: whatever the user may.")
@pass_ctx
def token_create(ctx: Context, username: str, name: str, scopes: tuple[str, ...]) -> None:
    """Create an API token for USERNAME and print it once."""
    from formloom.platform import tokens

    with ctx.app.app_context():
        session = new_session(ctx.app, write=True)
        owner = session.scalar(select(User).where(User.username == username))
        if owner is None:
            _fail(FormloomError(f"There is no user '{username}'."))
        try:
            _, secret = tokens.issue(session, None, owner, name, list(scopes) or None, via="cli")
        except FormloomError as exc:
            _fail(exc)
        session.commit()
        click.echo(secret)


def _actor(session, username: str | None) -> User:
    """Who a command acts as (and the audit names): ``--as USERNAME``, else the first global admin."""
    query = select(User).where(User.username == username) if username else \
        select(User).where(User.role == "admin", User.is_active.is_(True)).order_by(User.id)
    actor = session.scalar(query)
    if actor is None:
        raise FormloomError(f"There is no user '{username}'." if username else
                            "There is no admin user yet; create one with 'formloom user create NAME --admin'.")
    return actor


@main.group()
def member() -> None:
    """Give people roles in an app, or take them out of it."""


@member.command("set")
@click.argument("app_key")
@click.argument("username")
@click.argument("role")
@click.option("--as", "acting", default=None, help="Act as this user (default: the first admin)")
@pass_ctx
def member_set(ctx: Context, app_key: str, username: str, role: str, acting: str | None) -> None:
    """Make USERNAME a member of APP_KEY with ROLE, or give the member that role."""
    from formloom.platform import members

    with ctx.app.app_context(), new_session(ctx.app, write=True) as session:
        try:
            actor = _actor(session, acting)
            app = members.managed_app(session, actor, app_key)
            before = session.get(AppMember, (app.id, members.find_user(session, username).id))
            before_role = before.role if before is not None else None
            members.set_member(session, actor, app, username, role)
            session.commit()
        except FormloomError as exc:
            _fail(exc)
        if before_role == role:
            click.echo(f"{username} already has the role {role} in app '{app_key}'.")
        else:
            click.echo(f"{username} is now {role} in app '{app_key}'" +
                       (f" (was {before_role})." if before_role else " (new member)."))


@member.command("remove")
@click.argument("app_key")
@click.argument("username")
@click.option("--as", "acting", default=None, help="Act as this user (default: the first admin)")
@pass_ctx
def member_remove(ctx: Context, app_key: str, username: str, acting: str | None) -> None:
    """Take USERNAME out of APP_KEY (their records stay)."""
    from formloom.platform import members

    with ctx.app.app_context(), new_session(ctx.app, write=True) as session:
        try:
            actor = _actor(session, acting)
            app = members.managed_app(session, actor, app_key)
            person = members.find_user(session, username)
            members.remove_member(session, actor, app, members.get_member(session, actor, app, person.id))
            session.commit()
        except FormloomError as exc:
            _fail(exc)
        click.echo(f"{username} is no longer a member of app '{app_key}'.")


@main.group()
def team() -> None:
    """Manage teams (they decide whose records a role with the "team" scope sees)."""


@team.command("set")
@click.argument("key")
@click.option("--name", default=None, help="The team's name (required for a new team)")
@click.option("--manager", default=None, help="The manager's username ('' for no manager)")
@click.option("--member", "member_names", multiple=True,
              help="A member's username (repeatable); when given, these become the whole list")
@click.option("--as", "acting", default=None, help="Act as this user (default: the first admin)")
@pass_ctx
def team_set(ctx: Context, key: str, name: str | None, manager: str | None, member_names: tuple[str, ...],
             acting: str | None) -> None:
    """Create team KEY, or change its name, manager or members (what is not given stays)."""
    from formloom.platform import members

    change = members.TeamChange(name=members.KEEP if name is None else name,
                                manager=members.KEEP if manager is None else (manager or None),
                                members=member_names or members.KEEP)
    with ctx.app.app_context(), new_session(ctx.app, write=True) as session:
        try:
            actor = _actor(session, acting)
            found = members.find_team(session, actor, key)
            if found is None:
                found = members.create_team(session, actor, key, change)
            else:
                members.update_team(session, actor, found, change)
            view = members.team_view(session, found)
            session.commit()
        except FormloomError as exc:
            _fail(exc)
        people = ", ".join(u.username for u in view.members) or "no members"
        boss = view.manager.username if view.manager else "no manager"
        click.echo(f"Team '{key}' ({view.team.name}): manager {boss}; {people}.")


@main.group()
def template() -> None:
    """Bundled app templates."""


@template.command("list")
def template_list() -> None:
    """List the bundled templates."""
    from formloom.runtime.labels import text_of
    from formloom.templates_library import list_templates

    for info in list_templates():
        click.echo(f"{info['name']:<12} {info.get('version') or '-':<8} {text_of(info['label'])}")


@template.command("install")
@click.argument("name")
@click.option("--app-key", "--app", "app_key", default=None, help="Key of the new app (default: the template's)")
@click.option("--demo-data", is_flag=True, help="Also create sample records")
@click.option("--scale", default=1.0, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="Share of the full year of sample records to make (with --demo-data)")
@pass_ctx
def template_install(ctx: Context, name: str, app_key: str | None, demo_data: bool, scale: float) -> None:
    """Install template NAME as a new app."""
    from formloom.platform.storage import storage_for
    from formloom.templates_library import install
    from formloom.templates_library.demo import load_demo_data

    with ctx.app.app_context():
        session = new_session(ctx.app, write=True)
        admin = session.scalar(select(User).where(User.role == "admin").order_by(User.id))
        try:
            app = install(session, admin, name, app_key=app_key)
            counts = (load_demo_data(session, admin, app, scale=scale, storage=storage_for(ctx.app))
                      if demo_data else {})
            session.commit()
        except FormloomError as exc:
            _fail(exc)
        click.echo(f"Installed '{name}' as app '{app.key}'." + (f" Sample records: {counts}" if counts else ""))


@template.command("upgrade")
@click.argument("name")
@click.option("--app", "app_key", required=True, help="Key of the app installed from template NAME")
@click.option("--dry-run", is_flag=True, help="Only show what would change")
@pass_ctx
def template_upgrade(ctx: Context, name: str, app_key: str, dry_run: bool) -> None:
    """Upgrade an app to the bundled version of template NAME, keeping every change made in the app."""
    from formloom.platform.models import App
    from formloom.templates_library import upgrade

    with ctx.app.app_context():
        session = new_session(ctx.app, write=True)
        admin = session.scalar(select(User).where(User.role == "admin").order_by(User.id))
        try:
            app = session.scalar(select(App).where(App.key == app_key))
            if app is None:
                raise FormloomError(f"There is no app '{app_key}'; --app names an installed app.")
            origin = upgrade.installed(session, app)
            if origin is not None and origin.template != name:
                raise FormloomError(f"App '{app_key}' was installed from template '{origin.template}', "
                                    f"not '{name}'.")
            report = upgrade.plan(session, app) if dry_run else upgrade.upgrade(session, admin, app)
            session.commit()
        except FormloomError as exc:
            session.rollback()
            _fail(exc)
        for line in upgrade.report_lines(report):
            click.echo(line)


@main.command("import")
@click.argument("app_key")
@click.argument("entity_key")
@click.argument("path", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--match", default=None, help="Update the record whose FIELD equals the row's (else create)")
@click.option("--mapping", "mappings", multiple=True, metavar="COLUMN=FIELD",
              help="Import COLUMN into FIELD (repeatable; FIELD empty: ignore the column). Other columns "
                   "follow the mapping saved last time, else their names")
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing")
@click.option("--all-or-nothing", is_flag=True, help="Import nothing if any row has a problem")
@click.option("--no-automation", is_flag=True, help="Raise no rule events for the imported changes")
@click.option("--force", is_flag=True, help="rollback: undo the import even over later changes")
@click.option("--user", "username", default=None, help="Import as this user (default: the first admin)")
@pass_ctx
def import_file(ctx: Context, app_key: str, entity_key: str, path: str | None, match: str | None,
                mappings: tuple[str, ...], dry_run: bool, all_or_nothing: bool, no_automation: bool, force: bool,
                username: str | None) -> None:
    """Import records of ENTITY_KEY into APP_KEY from a CSV or XLSX file at PATH.

    The first line names the columns (field keys or labels, or see --mapping). Every row passes
    the same checks as a form, stage gates included; rows with problems are skipped and listed
    (with --all-or-nothing, nothing is imported then).

    `formloom import rollback BATCH` undoes import BATCH: records it created are deleted,
    records it updated get their previous values back.
    """
    from pathlib import Path

    from formloom.runtime import catalog, imports

    with ctx.app.app_context():
        session = new_session(ctx.app, write=True)
        query = select(User).where(User.username == username) if username else \
            select(User).where(User.role == "admin").order_by(User.id)
        actor = session.scalar(query)
        try:
            if actor is None:
                raise FormloomError(f"There is no user '{username}'." if username else "There is no admin user yet.")
            if app_key == "rollback":
                _rollback_import(session, actor, entity_key, force)
                return
            if path is None:
                raise FormloomError("Give the file to import: formloom import APP ENTITY PATH.")
            app = catalog.get_app(session, app_key)
            table = imports.read_table(Path(path).read_bytes(), Path(path).name)
            options = imports.ImportOptions(_mapping_option(mappings, table.header, session, app, entity_key),
                                            match, not no_automation, all_or_nothing)
            batch = imports.start(session, actor, app, entity_key, table, options, file_name=Path(path).name,
                                  dry_run=dry_run)
            session.commit()
            with click.progressbar(length=batch.total, label="Checking" if dry_run else "Importing",
                                   file=sys.stderr) as bar:
                batch = imports.run(session, actor, batch, progress=lambda b: bar.update(b.done - bar.pos))
            session.commit()
        except FormloomError as exc:
            session.rollback()
            _fail(exc)
        _import_summary(batch, entity_key)


def _mapping_option(mappings: tuple[str, ...], header: list[str], session, app: App,
                    entity_key: str) -> dict[str, str] | None:
    """--mapping COLUMN=FIELD over the saved (or automatic) mapping; None when none is given."""
    from formloom.runtime import catalog, imports

    if not mappings:
        return None
    entity = catalog.entity(session, app, entity_key)
    chosen = imports.suggested_mapping(session, app, entity, header)[0]
    for item in mappings:
        column, sep, key = item.partition("=")
        if not sep:
            raise FormloomError(f"--mapping takes COLUMN=FIELD (e.g. --mapping 'E-mail=email'), got '{item}'.")
        chosen[column.strip()] = key.strip()
    return chosen


def _import_summary(batch, entity_key: str) -> None:
    counts = batch.counts
    problems = [r for r in batch.results if r["action"] == "error"]
    for row in problems:
        for key, messages in row["errors"].items():
            for message in messages:
                click.echo(f"  line {row['line']}{f' {key}' if key else ''}: {message}", err=True)
    ignored = batch.options.get("ignored") or []
    if ignored:
        click.echo(f"Ignored column(s) that map to no field: {', '.join(ignored)}.", err=True)
    if batch.status == "dry_run":
        click.echo(f"Dry run (batch {batch.id}), nothing written: {counts['create']} to create, "
                   f"{counts['update']} to update, {counts['skip']} to skip, {counts['error']} with problems.")
    elif batch.status == "failed":
        click.echo(f"Nothing was imported: {len(problems)} row(s) have problems.", err=True)
    else:
        click.echo(f"Imported {counts['create']} new and {counts['update']} updated {entity_key} record(s) "
                   f"(batch {batch.id}); {counts['skip']} skipped, {counts['error']} with problems.")
    if problems:
        sys.exit(1)


def _rollback_import(session, actor: User, batch_ref: str, force: bool) -> None:
    from formloom.platform.models import ImportBatch
    from formloom.runtime import imports

    batch = session.get(ImportBatch, int(batch_ref)) if batch_ref.isdigit() else None
    if batch is None:
        raise FormloomError(f"There is no import batch '{batch_ref}'; `formloom import rollback BATCH` takes "
                            "the number the import printed.")
    app = session.get(App, batch.app_id)
    counts = imports.rollback(session, actor, imports.get_batch(session, actor, app, batch.id), force=force)
    session.commit()
    click.echo(f"Rolled back import {batch.id}: {counts['removed']} record(s) removed, {counts['restored']} "
               "restored to their values before the import.")


@main.command("export")
@click.argument("app_key")
@click.argument("entity_key")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv", show_default=True)
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False, writable=True, allow_dash=True),
              help="Write to this file ('-': standard output; default: ENTITY-DATE.FORMAT in this folder)")
@click.option("--user", "username", default=None,
              help="Export as this user, who sees only what their role may read (default: the first admin)")
@click.option("--header", type=click.Choice(["labels", "keys"]), default="labels", show_default=True,
              help="Name the columns by their labels or by their field keys")
@click.option("--locale", type=click.Choice(["en", "zh-CN"]), default=None,
              help="Language of labels and values (default: the user's, else English)")
@click.option("--search", default="", help="Only records whose title contains this text")
@click.option("--filter", "filters", multiple=True, metavar="FIELD[.OP]=VALUE",
              help="Only records that match, as the list's f.FIELD[.OP] parameters (repeatable)")
@click.option("--sort", default="-updated_at", show_default=True, help="[-]FIELD: the order of the rows")
@pass_ctx
def export_list(ctx: Context, app_key: str, entity_key: str, fmt: str, output: str | None,
                   username: str | None, header: str, locale: str | None, search: str,
                   filters: tuple[str, ...], sort: str) -> None:
    """Export the records of ENTITY_KEY in APP_KEY as CSV or XLSX, as the user's record list holds them.

    Columns are the record id, the fields the user may see, the owner and the created/updated
    times (UTC). See docs/exports.md.
    """
    from formloom.runtime import catalog, exports, listing

    with ctx.app.app_context(), new_session(ctx.app) as session:
        query = select(User).where(User.username == username) if username else \
            select(User).where(User.role == "admin").order_by(User.id)
        actor = session.scalar(query)
        try:
            if actor is None:
                raise FormloomError(f"There is no user '{username}'." if username else "There is no admin user yet.")
            app = catalog.get_app(session, app_key)
            entity = catalog.entity(session, app, entity_key)
            wanted = listing.ListQuery(search=search, sort=sort,
                                       filters=listing.parse_filters(_filter_args(filters), entity))
            exported = exports.export_records(
                session, actor, app, entity_key, wanted, exports.ExportFormat(fmt), locale or actor.locale or "en",
                header=exports.Header(header), max_rows=exports.max_rows_setting(ctx.app.config))
            target = output or exported.filename
            if target == "-":
                _write_chunks(exported.chunks, click.get_binary_stream("stdout"))
            else:
                with open(target, "wb") as stream:
                    _write_chunks(exported.chunks, stream)
        except FormloomError as exc:
            _fail(exc)
        where = "standard output" if target == "-" else target
        click.echo(f"Exported {exported.rows} {entity_key} record(s) to {where}.", err=target == "-")


def _write_chunks(chunks: Iterable[bytes], stream: BinaryIO) -> None:
    for chunk in chunks:
        stream.write(chunk)
    stream.flush()


def _filter_args(filters: tuple[str, ...]) -> dict[str, str]:
    """``stage=won``, ``amount.gte=1000`` as the list's ``f.stage``, ``f.amount.gte`` parameters."""
    args = {}
    for given in filters:
        name, equals, value = given.partition("=")
        if not equals or not name.strip():
            raise FormloomError(f"--filter must look like FIELD=VALUE or FIELD.OP=VALUE, got '{given}'.")
        args[f"f.{name.strip()}"] = value
    return args


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@pass_ctx
def serve(ctx: Context, host: str, port: int) -> None:
    """Serve Formloom (embedded server; use gunicorn 'formloom:create_app()' in production)."""
    migrate.upgrade(get_engine(ctx.app))
    _serve(ctx.app, host, port)


def _serve(app, host: str, port: int) -> None:
    from werkzeug.serving import run_simple

    from formloom.runtime import dispatch

    dispatch.start_embedded(app)  # rules run in this process unless AUTOMATION says otherwise
    run_simple(host, port, app, threaded=True, use_reloader=False)


@main.command()
@click.option("--redis-url", envvar="FORMLOOM_REDIS_URL", default=None,
              help="Redis to queue on (default: the REDIS_URL setting)")
@click.option("--burst", is_flag=True, help="Exit when the queue is empty (for scripts and tests)")
@pass_ctx
def worker(ctx: Context, redis_url: str | None, burst: bool) -> None:
    """Run automation: the relay and sweeper, and an RQ worker (production: PostgreSQL + Redis)."""
    from formloom.runtime import dispatch

    url = redis_url or ctx.app.config.get("REDIS_URL")
    if not url:
        _fail(FormloomError("The worker needs Redis: set FORMLOOM_REDIS_URL (e.g. redis://127.0.0.1:6379/0). "
                            "Without Redis, `formloom serve` runs automation in-process."))
    migrate.upgrade(get_engine(ctx.app))
    click.echo(f"Formloom worker on {url} (database {_safe_url(ctx.app.config['DATABASE_URL'])})")
    dispatch.run_worker(ctx.app, url, burst=burst)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Prepare the instance and exit")
@click.option("--scale", default=1.0, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="Share of the full year of sample records to make (0.1: a tenth)")
@pass_ctx
def demo(ctx: Context, host: str, port: int, no_serve: bool, scale: float) -> None:
    """Create a demo instance with the CRM template and sample data, and serve it."""
    from formloom.platform.storage import storage_for
    from formloom.templates_library import install
    from formloom.templates_library.demo import STAFF, TEAMS, load_demo_data

    app = ctx.app
    migrate.upgrade(get_engine(app))
    password = secrets.token_urlsafe(9)
    with app.app_context():
        session = new_session(app, write=True)
        admin = session.scalar(select(User).where(User.username == "admin"))
        if admin is None:
            admin = auth.create_user(session, "admin", password, admin=True, display_name="Admin")
        else:
            auth.set_password(admin, password)
        crm = session.scalar(select(App).where(App.key == "crm"))
        if crm is None:
            crm = install(session, admin, "crm")
            started = time.monotonic()

            def phase(name: str) -> None:
                click.echo(f"  [{time.monotonic() - started:5.1f}s] {name}")

            click.echo("Installed the CRM template; making a year of sample records:")
            counts = load_demo_data(session, admin, crm, scale=scale, storage=storage_for(app), progress=phase)
            click.echo(f"  [{time.monotonic() - started:5.1f}s] done: "
                       + ", ".join(f"{n} {key}" for key, n in sorted(counts.items())))
        people = [session.scalar(select(User).where(User.username == username)) for username, *_ in STAFF]
        for person in people:
            if person is not None:
                auth.set_password(person, password)
        session.commit()
    click.echo(f"Instance folder: {app.instance_path}")
    click.echo(f"Formloom is running at http://{host}:{port}/")
    click.echo(f"Log in as admin with password: {password}")
    click.echo("Same password for the sales team:")
    for username, display, role, team in STAFF:
        where = f", {TEAMS[team][0]} team" if team else ""
        click.echo(f"  {username:<10} {display} ({role}{where})")
    if not no_serve:
        _serve(app, host, port)


@main.group("app")
def app_group() -> None:
    """Export an app's definitions to a bundle file; import a bundle as a new app."""


@app_group.command("export")
@click.argument("app_key")
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False, writable=True),
              help="Write the bundle to this file (default: standard output)")
@pass_ctx
def app_export(ctx: Context, app_key: str, output: str | None) -> None:
    """Export the published definitions of APP_KEY as a JSON bundle (no drafts, no records)."""
    import json
    from pathlib import Path

    from formloom.builder import bundles
    from formloom.runtime import catalog

    with ctx.app.app_context(), new_session(ctx.app) as session:
        try:
            app = catalog.get_app(session, app_key)
            bundle = bundles.export_app(session, app)
        except FormloomError as exc:
            _fail(exc)
        text = json.dumps(bundle, ensure_ascii=False, indent=2) + "\n"
        if output is None:
            click.echo(text, nl=False)
            return
        Path(output).write_text(text, encoding="utf-8")
        counts = bundles.published_counts(session, app)
        click.echo(f"Exported app '{app.key}' to {output}: {bundles.describe_counts(counts)}.")


@app_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--key", "new_key", default=None, help="Key of the new app (default: the key in the bundle)")
@pass_ctx
def app_import(ctx: Context, path: str, new_key: str | None) -> None:
    """Create a new app from the bundle in PATH: every definition, or nothing.

    Every problem is printed with its path in the bundle (like $.definitions[3].fields[2].type).
    """
    import json
    from pathlib import Path

    from formloom.builder import bundles

    try:
        bundle = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        _fail(FormloomError(f"{path} cannot be read as a JSON bundle: {exc}"))
    with ctx.app.app_context(), new_session(ctx.app, write=True) as session:
        admin = session.scalar(select(User).where(User.role == "admin").order_by(User.id))
        try:
            app = bundles.import_bundle(session, admin, bundle, app_key=new_key)
            session.commit()
        except FormloomError as exc:
            _fail(exc)
        counts = bundles.published_counts(session, app)
        click.echo(f"Imported app '{app.key}' from {path}: {bundles.describe_counts(counts)}.")


if __name__ == "__main__":  # pragma: no cover
    main()
