"""Importing records from a file: a dry run, then a commit that can be rolled back as a whole.

Every row goes through :mod:`formloom.runtime.records` exactly like a form or an API call, so
validation, unique values, stage gates and the change log apply as they do for a rep. A batch
(:class:`~formloom.platform.models.ImportBatch`) keeps the options, the progress and one result
per row (create / update / skip / error with the problems per field).

- A **dry run** writes every row inside a savepoint and rolls it back: it finds exactly what the
  commit would (a value repeated further down the file, a row updating one created above it).
- A **commit** imports the valid rows and skips the bad ones, committing every ``CHUNK`` rows so
  that the progress can be read meanwhile; ``all_or_nothing`` keeps nothing if any row fails.
- The change log names ``import:<batch id>`` as the cause of every change; :func:`rollback`
  finds the batch's changes there and undoes them.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from formloom.platform.auth import Action, Cause, authorize
from formloom.platform.db import json_value, utcnow
from formloom.platform.errors import Conflict, FormloomError, NotFound
from formloom.platform.models import (
    App,
    CauseKind,
    ChangeAction,
    ChangeLog,
    ImportBatch,
    ImportMapping,
    ImportStatus,
    Record,
    User,
)
from formloom.runtime import access, catalog, events, records
from formloom.runtime.compiler import CompiledEntity
from formloom.runtime.import_files import ImportFileError, Table, read_csv, read_table, read_xlsx
from formloom.runtime.labels import LOCALES, text_of
from formloom.runtime.rules import EventKind

__all__ = ["ImportFileError", "Table", "read_csv", "read_table", "read_xlsx"]

LIST_TYPES = frozenset({"multiselect", "tags", "users", "relations"})
MATCH_TYPES = frozenset({"text", "email", "phone", "url", "integer", "serial"})
CHUNK = 500  # rows per transaction of a commit: the progress others can read advances by this much


class RowAction(str, Enum):
    CREATE = "create"
    UPDATE = "update"
    SKIP = "skip"
    ERROR = "error"


@dataclass
class ImportOptions:
    """What the importer chose: the column mapping, the match key, automations, atomicity."""

    mapping: dict[str, str] | None = None  # column -> field key; None: the saved or automatic one
    match: str | None = None
    automation: bool = True
    all_or_nothing: bool = False
    locale: str = "en"


@dataclass
class RowProblem:
    line: int  # the line of the file (the header is line 1)
    fields: dict[str, list[str]]


@dataclass
class ImportReport:
    batch: str
    created: int = 0
    updated: int = 0
    skipped: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# --- the column mapping ----------------------------------------------------------------------

def importable_fields(entity: CompiledEntity, hidden: Iterable[str] = ()) -> list:
    """The fields a column may be mapped to: stored ones (not computed) the importer may see."""
    hidden = set(hidden)
    return [s for s in entity.fields if not s.type.computed and s.key not in hidden]


def automatic_mapping(entity: CompiledEntity, header: Iterable[str], hidden: Iterable[str] = ()) -> dict[str, str]:
    """Map each column named like a field (its key, or its label in any language) to that field."""
    names: dict[str, str] = {}
    for spec in importable_fields(entity, hidden):
        names[spec.key.casefold()] = spec.key
        for locale in LOCALES:
            names.setdefault(text_of(spec.definition["label"], locale).strip().casefold(), spec.key)
    return {column: names[column.strip().casefold()] for column in header if column.strip().casefold() in names}


def suggested_mapping(session: Session, app: App, entity: CompiledEntity, header: list[str],
                      hidden: Iterable[str] = ()) -> tuple[dict[str, str], str | None]:
    """The mapping to offer: the one saved last time for these columns, else the automatic one."""
    mapping = automatic_mapping(entity, header, hidden)
    saved = saved_mapping(session, app, entity.key)
    allowed = {s.key for s in importable_fields(entity, hidden)}
    if saved is None:
        return mapping, None
    for column in header:
        if column in saved.columns:
            key = saved.columns[column]
            if key in allowed:
                mapping[column] = key
            elif not key:
                mapping.pop(column, None)  # the importer chose to ignore it
    return mapping, saved.match_key if saved.match_key in allowed else None


def check_mapping(entity: CompiledEntity, header: list[str], mapping: Mapping[str, str],
                  hidden: Iterable[str] = ()) -> dict[str, str]:
    """The mapping with ignored columns left out; a field that cannot be imported is refused."""
    allowed = {s.key for s in importable_fields(entity, hidden)}
    chosen, used = {}, {}
    for column, key in mapping.items():
        if not key:
            continue
        if column not in header:
            raise FormloomError(f"The mapping names the column '{column}', which the file does not have; "
                                f"its columns are: {', '.join(header)}.")
        if key not in allowed:
            raise FormloomError(f"Column '{column}' is mapped to '{key}', which is not a field of {entity.key} "
                                f"that can be imported; use one of: {', '.join(sorted(allowed))}.")
        if key in used:
            raise FormloomError(f"Columns '{used[key]}' and '{column}' are both mapped to the field '{key}'; "
                                "map one of them to another field or ignore it.")
        used[key] = column
        chosen[column] = key
    return chosen


def saved_mapping(session: Session, app: App, entity_key: str) -> ImportMapping | None:
    return session.scalar(select(ImportMapping).where(ImportMapping.app_id == app.id,
                                                      ImportMapping.entity_key == entity_key))


def save_mapping(session: Session, user: User, app: App, entity_key: str, header: list[str],
                 mapping: Mapping[str, str], match: str | None) -> ImportMapping:
    """Remember the mapping (ignored columns as ``""``) for the next import into the entity."""
    saved = saved_mapping(session, app, entity_key)
    if saved is None:
        saved = ImportMapping(app_id=app.id, entity_key=entity_key, columns={})
        session.add(saved)
    columns = dict(saved.columns)
    columns.update({column: mapping.get(column, "") for column in header})
    saved.columns, saved.match_key = columns, match
    saved.updated_at, saved.updated_by = utcnow(), user.id
    return saved


def unmapped_columns(header: list[str], mapping: Mapping[str, str]) -> list[str]:
    return [column for column in header if column not in mapping]


# --- starting and running a batch --------------------------------------------------------------

def _permitted(session: Session, user: User, app: App, entity_key: str) -> tuple[CompiledEntity, access.Policy]:
    authorize(session, user, Action.IMPORT_RECORDS, app)
    entity = catalog.entity(session, app, entity_key)
    rules = access.policy(session, user, app)
    rules.require(entity.key, access.RecordAction.IMPORT)
    return entity, rules


def _check_match(entity: CompiledEntity, rules: access.Policy, match: str | None) -> None:
    if match is not None and (match not in entity.by_key or match in rules.hidden(entity.key)
                              or entity.by_key[match].type.name not in MATCH_TYPES):
        raise FormloomError(f"Records can be matched by a text, e-mail, phone, URL, number or serial field of "
                            f"{entity.key}; '{match}' is not one.")


def start(session: Session, user: User, app: App, entity_key: str, table: Table, options: ImportOptions, *,
          file_name: str = "", dry_run: bool = False, remember: bool = True,
          max_rows: int | None = None) -> ImportBatch:
    """Check the options and keep the rows in a new batch, ready for :func:`run`."""
    _permitted(session, user, app, entity_key)
    if not table.rows:
        raise ImportFileError(f"The file {f'{file_name!r} ' if file_name else ''}has a header but no rows; "
                              "put one record per line below the header.")
    if max_rows is not None and len(table.rows) > max_rows:
        raise ImportFileError(f"The file has {len(table.rows)} rows; one import takes at most {max_rows}. "
                              "Split it into several files.")
    batch = ImportBatch(app_id=app.id, entity_key=entity_key, user_id=user.id, file_name=file_name[:255],
                        status=(ImportStatus.DRY_RUN if dry_run else ImportStatus.QUEUED).value,
                        options={"header": table.header}, rows=table.rows, total=len(table.rows), done=0,
                        counts=_zero(), results=None)
    configure(session, user, batch, options, remember=remember)
    session.add(batch)
    session.flush()
    return batch


def configure(session: Session, user: User, batch: ImportBatch, options: ImportOptions, *,
              remember: bool = True) -> ImportBatch:
    """Set a batch's mapping, match key and switches (before it runs); remember the mapping."""
    app = session.get(App, batch.app_id)
    entity, rules = _permitted(session, user, app, batch.entity_key)
    if batch.finished_at is not None and batch.status != ImportStatus.DRY_RUN.value:
        raise Conflict(f"Import #{batch.id} has run already; start a new import to change its options.")
    _check_match(entity, rules, options.match)
    header, hidden = batch.options["header"], rules.hidden(entity.key)
    if options.mapping is None:
        mapping = suggested_mapping(session, app, entity, header, hidden)[0] if remember else \
            automatic_mapping(entity, header, hidden)
    else:
        mapping = check_mapping(entity, header, options.mapping, hidden)
    if options.match is not None and options.match not in mapping.values():
        raise FormloomError(f"The match key '{options.match}' is not mapped to any column; map a column to it "
                            "or import without a match key.")
    if remember:
        save_mapping(session, user, app, entity.key, header, mapping, options.match)
    chosen = ImportOptions(mapping, options.match, options.automation, options.all_or_nothing, options.locale)
    batch.options = {**asdict(chosen), "header": header, "ignored": unmapped_columns(header, mapping)}
    batch.results, batch.finished_at, batch.done, batch.counts = None, None, 0, _zero()
    return batch


def commit_checked(session: Session, user: User, checked: ImportBatch) -> ImportBatch:
    """A new batch importing the rows of a dry run with its options (the dry run stays as it was)."""
    if checked.status != ImportStatus.DRY_RUN.value or not checked.rows:
        raise Conflict(f"Import #{checked.id} is not a dry run waiting to be imported.")
    app = session.get(App, checked.app_id)
    _permitted(session, user, app, checked.entity_key)
    batch = ImportBatch(app_id=checked.app_id, entity_key=checked.entity_key, user_id=user.id,
                        file_name=checked.file_name, status=ImportStatus.QUEUED.value, options=dict(checked.options),
                        rows=checked.rows, total=checked.total, done=0, counts=_zero(), results=None)
    checked.rows = None  # the file now lives in the batch that imports it
    session.add(batch)
    session.flush()
    return batch


def _zero() -> dict[str, int]:
    return {action.value: 0 for action in RowAction}


def run(session: Session, user: User, batch: ImportBatch,
        progress: Callable[[ImportBatch], None] | None = None) -> ImportBatch:
    """Carry out a batch: check every row (dry run) or import them; the batch holds the outcome.

    A commit that is not all-or-nothing commits the session every ``CHUNK`` rows (the progress
    advances for other readers); otherwise the caller commits.
    """
    app = session.get(App, batch.app_id)
    entity, rules = _permitted(session, user, app, batch.entity_key)
    options = ImportOptions(**{k: batch.options[k] for k in ("mapping", "match", "automation",
                                                               "all_or_nothing", "locale")})
    dry_run = batch.status == ImportStatus.DRY_RUN.value
    rows = list(batch.rows) if batch.rows else None
    cause = Cause(CauseKind.IMPORT, user.id, f"import:{batch.id}")
    step = _Step(session, user, cause, app, entity, rules, options)
    counts, results = _zero(), []
    if rows is None or not rows:
        raise Conflict(f"Import #{batch.id} has no rows left to import.")
    if not dry_run:
        batch.status = ImportStatus.RUNNING.value
    atomic = dry_run or options.all_or_nothing
    outer = session.begin_nested() if atomic else None
    for number, row in enumerate(rows, start=1):
        result = step.apply(row)
        counts[result["action"]] += 1
        results.append(result)
        if number % CHUNK == 0 or number == len(rows):
            batch.done, batch.counts = number, dict(counts)
            if not atomic:
                session.commit()
            if progress is not None:
                progress(batch)
    failed = options.all_or_nothing and counts[RowAction.ERROR.value] > 0
    if outer is not None and (dry_run or failed):
        outer.rollback()
    elif outer is not None:
        outer.commit()
    _finish(batch, counts, results, dry_run, failed)
    return batch


def _finish(batch: ImportBatch, counts: dict, results: list, dry_run: bool, failed: bool) -> None:
    batch.done, batch.counts, batch.results = len(results), counts, results
    batch.finished_at = utcnow()
    if dry_run:
        return
    batch.rows = None  # imported: the change log holds what was written
    if failed:
        batch.status = ImportStatus.FAILED.value
        batch.message = (f"Nothing was imported: {counts[RowAction.ERROR.value]} row(s) have problems "
                         "(all or nothing).")
    else:
        batch.status = ImportStatus.DONE.value


class ValueIndex:
    """The values of an entity's unique fields and match key among its live records, in memory.

    Built with one query per field when an import starts, and kept up to date with what the
    import writes, so that neither the unique checks nor the match-key lookup query the whole
    entity once per row (which grows with the square of the file's length). Changes others make
    while the import runs are not seen: like the unique check of a form, it is not a lock.
    """

    def __init__(self, session: Session, app: App, entity: CompiledEntity, keys: Iterable[str]):
        self.entity_key = entity.key
        self.numeric = {k for k in keys if entity.by_key[k].type.name == "integer"}
        self.values: dict[str, dict] = {k: {} for k in keys}
        for key in self.values:
            for record_id, title, value in session.execute(select(
                    Record.id, Record.title, json_value(Record.data, key, numeric=key in self.numeric)).where(
                    Record.app_id == app.id, Record.entity_key == entity.key, Record.deleted_at.is_(None))
                    .order_by(Record.id)):
                self._add(key, value, record_id, title)

    def _add(self, key: str, value: object, record_id: int, title: str) -> None:
        if value is not None and value != "":
            self.values[key].setdefault(value, []).append((record_id, title))

    def covers(self, entity_key: str, field_key: str) -> bool:
        return entity_key == self.entity_key and field_key in self.values

    def duplicate(self, field_key: str, value: object, exclude_id: int | None) -> str | None:
        for record_id, title in self.values[field_key].get(value, ()):
            if record_id != exclude_id:
                return title or f"#{record_id}"
        return None

    def ids(self, field_key: str, value: object) -> list[int]:
        return [record_id for record_id, _ in self.values[field_key].get(value, ())]

    def replace(self, record: Record, old: Mapping | None) -> None:
        """Record that ``record`` now holds its current values instead of ``old`` ones."""
        for key, by_value in self.values.items():
            if old is not None and old.get(key) in by_value:
                holders = [h for h in by_value[old[key]] if h[0] != record.id]
                by_value[old[key]] = holders
            self._add(key, record.data.get(key), record.id, record.title)


class _Step:
    """Imports one row: create, update (by the match key), skip, or the row's problems."""

    def __init__(self, session: Session, user: User, cause: Cause, app: App, entity: CompiledEntity,
                 rules: access.Policy, options: ImportOptions):
        self.session, self.user, self.cause, self.app = session, user, cause, app
        self.entity, self.rules, self.options = entity, rules, options
        keys = {s.key for s in entity.fields if s.definition.get("unique")} | ({options.match} - {None})
        self.known = ValueIndex(session, app, entity, keys)

    def apply(self, row: Mapping) -> dict:
        line = row["line"]
        values = row_values(self.entity, row["values"], self.options.mapping or {})
        if not any(v not in ("", []) for v in values.values()):
            return {"line": line, "action": RowAction.SKIP.value, "reason": "empty"}
        try:
            # No savepoint per row: records.create and records.update check everything before
            # they write, so a refused row leaves nothing behind; a savepoint per row made an
            # import three times slower on SQLite (11 ms against 3.8 ms a row).
            record, old, result = self._write(values)
        except FormloomError as exc:
            return {"line": line, "action": RowAction.ERROR.value,
                    "errors": exc.field_messages() or {"": [exc.message]}}
        if result["action"] != RowAction.SKIP.value:
            self.known.replace(record, old)
        return {"line": line, **result}

    def _write(self, values: dict) -> tuple[Record, dict | None, dict]:
        session, options = self.session, self.options
        mute = events.muted(session, self.cause.ref) if not options.automation else _nothing()
        with mute:
            existing = self._existing(values.get(options.match)) if options.match else None
            if existing is None:
                record = records.create(session, self.user, self.cause, self.app, self.entity.key, values,
                                        locale=options.locale, known=self.known)
                return record, None, {"action": RowAction.CREATE.value, "record_id": record.id}
            version, old = existing.version, dict(existing.data)
            records.update(session, self.user, self.cause, self.app, existing, values, version,
                           locale=options.locale, known=self.known)
        if existing.version == version:
            return existing, old, {"action": RowAction.SKIP.value, "reason": "unchanged", "record_id": existing.id}
        return existing, old, {"action": RowAction.UPDATE.value, "record_id": existing.id}

    def _existing(self, value: str | None) -> Record | None:
        """The record to update: among those the importer may update, the first with the value."""
        key = self.options.match
        if not value:
            return None
        try:
            wanted = int(value) if key in self.known.numeric else value
        except ValueError:
            return None
        ids = self.known.ids(key, wanted)
        if not ids:
            return None
        return self.session.scalar(select(Record).where(
            Record.id.in_(ids), Record.deleted_at.is_(None),
            self.rules.scope(self.entity.key, access.RecordAction.UPDATE)).order_by(Record.id).limit(1))


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def row_values(entity: CompiledEntity, cells: Mapping[str, str], mapping: Mapping[str, str]) -> dict:
    """A row's cells as form input of the mapped fields (lists split at commas or semicolons)."""
    values = {}
    for column, key in mapping.items():
        raw = (cells.get(column) or "").strip()
        spec = entity.by_key.get(key)
        if spec is None or spec.type.computed:
            continue
        if spec.type.name in LIST_TYPES:
            values[key] = [part.strip() for part in raw.replace(";", ",").split(",") if part.strip()]
        else:
            values[key] = raw
    return values


def report_of(batch: ImportBatch) -> ImportReport:
    counts = batch.counts or {}
    problems = [RowProblem(r["line"], r["errors"]) for r in batch.results or [] if r["action"] == "error"]
    kept = batch.status not in (ImportStatus.DRY_RUN.value, ImportStatus.FAILED.value)
    return ImportReport(str(batch.id), counts.get("create", 0) if kept else 0,
                        counts.get("update", 0) if kept else 0, counts.get("skip", 0), problems)


def import_rows(session: Session, user: User, app: App, entity_key: str, table: Table, *,
                match: str | None = None, locale: str = "en", all_or_nothing: bool = True,
                automation: bool = True) -> ImportReport:
    """Import a table at once in this session (the caller commits): all rows, or with
    ``all_or_nothing=False`` the valid ones."""
    options = ImportOptions(None, match, automation, all_or_nothing, locale)
    batch = start(session, user, app, entity_key, table, options, remember=False)
    return report_of(run(session, user, batch))


def get_batch(session: Session, user: User, app: App, batch_id: int) -> ImportBatch:
    """A batch of the app, for someone who may import into its entity."""
    batch = session.get(ImportBatch, batch_id)
    if batch is None or batch.app_id != app.id:
        raise NotFound(f"There is no import #{batch_id} in this app.")
    _permitted(session, user, app, batch.entity_key)
    return batch


def batches(session: Session, user: User, app: App, limit: int = 100) -> list[ImportBatch]:
    """The app's latest imports into the entities the user may import into."""
    authorize(session, user, Action.IMPORT_RECORDS, app)
    rules = access.policy(session, user, app)
    found = session.scalars(select(ImportBatch).where(ImportBatch.app_id == app.id)
                            .order_by(ImportBatch.id.desc()).limit(limit))
    return [b for b in found if rules.allows(b.entity_key, access.RecordAction.IMPORT)]


# --- rollback ----------------------------------------------------------------------------------

def rollback(session: Session, user: User, batch: ImportBatch, *, force: bool = False) -> dict[str, int]:
    """Undo a batch: records it created are soft-deleted, records it updated get their values back.

    Refused (nothing changed) when someone changed one of them after the import, unless
    ``force``: then the import's own changes are undone over the later ones. The rollback is
    written to the change log with the cause ``import:<id>:rollback``. Returns how many records
    were removed and restored.
    """
    app = session.get(App, batch.app_id)
    entity, _ = _permitted(session, user, app, batch.entity_key)
    # A failed batch may have committed some chunks before it stopped: those can be undone too.
    if batch.status not in (ImportStatus.DONE.value, ImportStatus.FAILED.value):
        raise Conflict(f"Import #{batch.id} is {batch.status.replace('_', ' ')}; only a finished import can be "
                       "rolled back.")
    ref = f"import:{batch.id}"
    logs = list(session.scalars(select(ChangeLog).where(ChangeLog.cause_ref == ref).order_by(ChangeLog.id)))
    touched: dict[int, list[ChangeLog]] = {}
    for row in logs:
        touched.setdefault(row.record_id, []).append(row)
    later = _later_changes(session, touched, ref)
    if later and not force:
        raise Conflict(f"Import #{batch.id} was not rolled back: {len(later)} of its records were changed after "
                       f"the import ({', '.join(f'#{i}' for i in sorted(later)[:10])}"
                       f"{' …' if len(later) > 10 else ''}). Nothing was changed; roll back anyway to undo "
                       "the import's own changes over theirs.")
    cause = Cause(CauseKind.IMPORT, user.id, f"{ref}:rollback")
    counts = {"removed": 0, "restored": 0}
    mute = events.muted(session, cause.ref) if not batch.options.get("automation", True) else _nothing()
    ids = list(touched)
    with mute:
        for first in range(0, len(ids), CHUNK):  # load and write 500 records at a time
            chunk = ids[first:first + CHUNK]
            for record in session.scalars(select(Record).where(Record.id.in_(chunk)).order_by(Record.id)):
                rows = touched[record.id]
                if any(r.action == ChangeAction.CREATE.value for r in rows):
                    counts["removed"] += _remove(session, app, record, cause)
                else:
                    counts["restored"] += _restore(session, app, entity, record, rows, cause)
            session.flush()
    batch.status, batch.rolled_back_at, batch.rolled_back_by = ImportStatus.ROLLED_BACK.value, utcnow(), user.id
    session.flush()
    return counts


def _later_changes(session: Session, touched: Mapping[int, list[ChangeLog]], ref: str) -> set[int]:
    """Records changed by something other than the batch after the batch first changed them."""
    if not touched:
        return set()
    first = {record_id: rows[0].id for record_id, rows in touched.items()}
    later = set()
    ids = list(first)
    for start_at in range(0, len(ids), 500):
        chunk = ids[start_at:start_at + 500]
        for record_id, log_id in session.execute(select(ChangeLog.record_id, ChangeLog.id).where(
                ChangeLog.record_id.in_(chunk), ChangeLog.id > min(first[i] for i in chunk),
                (ChangeLog.cause_ref != ref) | ChangeLog.cause_ref.is_(None))):
            if log_id > first[record_id]:
                later.add(record_id)
    return later


def _remove(session: Session, app: App, record: Record, cause: Cause) -> int:
    if record.deleted_at is not None:
        return 0
    record.deleted_at = utcnow()
    records.log_change(session, record, ChangeAction.DELETE, {}, cause)
    events.emit(session, app, EventKind.DELETED, record, {}, cause.user_id)
    return 1


def _restore(session: Session, app: App, entity: CompiledEntity, record: Record, rows: list[ChangeLog],
             cause: Cause) -> int:
    """Put back the values the batch's updates replaced (the oldest value of each field)."""
    data = dict(record.data)
    for row in reversed(rows):
        for key, (old, _new) in row.diff.items():
            if old is None:
                data.pop(key, None)
            else:
                data[key] = old
    changes = records.diff(record.data, data)
    if not changes:
        return 0
    records.log_change(session, record, ChangeAction.UPDATE, changes, cause)
    record.data = data
    record.title = records.title_of(entity, data)
    record.owner_id = records.owner_of(entity, data, record.owner_id)
    record.updated_at, record.updated_by = utcnow(), cause.user_id
    events.emit(session, app, EventKind.UPDATED, record, {"changes": changes}, cause.user_id)
    return 1


# --- the queued job ----------------------------------------------------------------------------

def run_queued(session: Session, batch_id: int) -> int:
    """Run a queued batch as the user who started it; returns how many rows were done.

    A commit claims its batch (queued → running) in one UPDATE, so a job delivered twice imports
    once; a dry run writes nothing and may simply run again.
    """
    batch = session.get(ImportBatch, batch_id)
    if batch is None or batch.finished_at is not None:
        return 0
    if batch.status != ImportStatus.DRY_RUN.value:
        claimed = session.execute(update(ImportBatch).where(
            ImportBatch.id == batch_id, ImportBatch.status == ImportStatus.QUEUED.value)
            .values(status=ImportStatus.RUNNING.value)).rowcount
        session.commit()
        if not claimed:
            return 0
    user = session.get(User, batch.user_id) if batch.user_id is not None else None
    try:
        if user is None:
            raise FormloomError("The user who started this import no longer exists; start it again.")
        run(session, user, batch)
        session.commit()
    except FormloomError as exc:
        session.rollback()
        _failed(session, batch_id, exc.message)
    except Exception:
        session.rollback()
        _failed(session, batch_id, "The import stopped on an unexpected error; the rows imported before it are "
                                   "kept and can be rolled back.")
        raise
    return batch.done


def _failed(session: Session, batch_id: int, message: str) -> None:
    batch = session.get(ImportBatch, batch_id)
    batch.status, batch.message, batch.finished_at = ImportStatus.FAILED.value, message, utcnow()
    session.commit()
