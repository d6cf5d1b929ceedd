"""Who may do what to which records and fields: one policy per (user, app), asked everywhere.

An app's roles (``AppMember.role``) get their powers from the app's published ``access``
definition (``docs/access.md``). Per entity a role may create, read, update, delete, export and
import; read, update and delete carry a **scope**: the records one owns, those of one's teams,
or all, optionally narrowed by a condition. Per field a role may find it hidden (never sent to
the browser or the API) or read-only. Roles the definition does not list keep the built-in
defaults below; the app role ``admin`` and global admins may do everything.

Scopes are SQL: :meth:`Policy.scope` is added to every query that lists, counts, searches or
picks records, and :meth:`Policy.permits` asks the same clause of one record, so a list and a
record page can never disagree.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from sqlalchemy import and_, bindparam, exists, false, func, literal_column, not_, or_, select, text, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from formloom.platform.auth import Action, can
from formloom.platform.db import json_value
from formloom.platform.errors import Forbidden, NotFound
from formloom.platform.models import App, AppMember, AppRole, Record, Team, TeamMember, User
from formloom.runtime.compiler import CompiledEntity


class RecordAction(str, Enum):
    CREATE = "create"
    READ = "read"
    UPDATE = "update"
    DELETE = "delete"
    EXPORT = "export"
    IMPORT = "import"


class Scope(str, Enum):
    OWN = "own"
    TEAM = "team"
    ALL = "all"


class FieldAccess(str, Enum):
    HIDDEN = "hidden"
    READ_ONLY = "read_only"
    EDITABLE = "editable"


SCOPED = (RecordAction.READ, RecordAction.UPDATE, RecordAction.DELETE)
# Scope conditions run as SQL: only tests that mean the same in SQL and in conditions.py. One
# value (text, choice, yes/no, user, relation) is compared; several values (multiple choice,
# users, relations) are asked whether they hold one. (SQL's `contains` is "holds", never
# conditions.py's "has as a substring", and a list is never compared whole.)
_EMPTY = ("empty", "not_empty")
WHEN_OPERATORS_BY_KIND: dict[str, tuple[str, ...]] = {
    "text": ("eq", "ne", "in", "not_in", *_EMPTY), "id": ("eq", "ne", "in", "not_in", *_EMPTY),
    "boolean": ("eq", "ne", *_EMPTY), "list": ("contains", "not_contains", *_EMPTY),
    "ids": ("contains", "not_contains", *_EMPTY)}
WHEN_OPERATORS = frozenset(op for ops in WHEN_OPERATORS_BY_KIND.values() for op in ops)
WHEN_KINDS = frozenset(WHEN_OPERATORS_BY_KIND)
ACCESS_KEY = "access"


@dataclass(frozen=True)
class Grant:
    """One action on one entity: denied (``scope`` None), or allowed within a scope."""

    scope: Scope | None
    when: Mapping | None = None

    @property
    def allowed(self) -> bool:
        return self.scope is not None


DENIED = Grant(None)
ALL = Grant(Scope.ALL)

# The powers of the built-in roles, when the access definition does not list them.
_EVERYTHING = {"create": True, "read": "all", "update": "all", "delete": "all", "export": True, "import": True}
BUILT_IN: dict[str, dict] = {
    AppRole.ADMIN.value: {"entities": {"*": _EVERYTHING}, "build": True, "members": True},
    AppRole.MANAGER.value: {"entities": {"*": _EVERYTHING}},
    AppRole.REP.value: {"entities": {"*": {"create": True, "read": "all", "update": "all", "delete": "all"}}},
    AppRole.VIEWER.value: {"entities": {"*": {"read": "all"}}},
}


def _grant(raw: Any) -> Grant:
    if raw is True:
        return ALL
    if isinstance(raw, str):
        return Grant(Scope(raw))
    if isinstance(raw, Mapping):
        return Grant(Scope(raw["scope"]), raw.get("when"))
    return DENIED


@dataclass
class Policy:
    """What one user may do in one app. Build with :func:`policy`; cheap to ask."""

    user: User
    app: App
    role: str | None  # None: not a member (a global admin, or no one)
    superuser: bool  # a global admin or the app's admin: everything, everywhere
    rules: Mapping  # the role's entry (``entities``, ``fields``, ``build``, ``members``)
    team_ids: frozenset[int] = frozenset()  # the user and everyone in the teams they belong to or manage
    _cache: dict = field(default_factory=dict)

    # --- actions ---------------------------------------------------------------------------

    def grant(self, entity_key: str, action: RecordAction) -> Grant:
        if self.superuser:
            return ALL
        entities = self.rules.get("entities") or {}
        for entry in (entities.get(entity_key), entities.get("*")):
            if isinstance(entry, Mapping) and action.value in entry:
                return _grant(entry[action.value])
        return DENIED

    def allows(self, entity_key: str, action: RecordAction) -> bool:
        return self.grant(entity_key, action).allowed

    def require(self, entity_key: str, action: RecordAction) -> None:
        """Raise :class:`Forbidden` unless the role may do ``action`` on some records of the entity."""
        if not self.allows(entity_key, action):
            raise Forbidden(f"Your role{self._role_words()} may not {action.value} {entity_key} records "
                            f"in app '{self.app.key}'; ask an app admin if you need to.")

    @property
    def may_build(self) -> bool:
        return self.superuser or bool(self.rules.get("build"))

    @property
    def may_manage_members(self) -> bool:
        return self.superuser or bool(self.rules.get("members"))

    def readable_entities(self, keys: Iterable[str]) -> list[str]:
        return [k for k in keys if self.allows(k, RecordAction.READ)]

    def _role_words(self) -> str:
        return f" ({self.role})" if self.role else ""

    # --- scopes ----------------------------------------------------------------------------

    def scope(self, entity_key: str, action: RecordAction = RecordAction.READ) -> ColumnElement:
        """A WHERE clause on :class:`Record` that keeps the records ``action`` may touch."""
        grant = self.grant(entity_key, action)
        if grant.scope is None:
            return false()
        clause = {Scope.ALL: true(),
                  Scope.OWN: Record.owner_id == self.user.id,
                  Scope.TEAM: Record.owner_id.in_(sorted(self.team_ids))}[grant.scope]
        if grant.when is not None:
            clause = and_(clause, condition_sql(grant.when, self.user.id, self._dialect))
        return clause

    def permits(self, session: Session, record: Record, action: RecordAction = RecordAction.READ) -> bool:
        """Whether ``record`` is within the scope of ``action`` (one query, the lists' own clause)."""
        grant = self.grant(record.entity_key, action)
        if grant.scope is None:
            return False
        if grant.scope is Scope.ALL and grant.when is None:
            return True
        return session.scalar(select(Record.id).where(Record.id == record.id,
                                                      self.scope(record.entity_key, action))) is not None

    def check(self, session: Session, record: Record, action: RecordAction) -> None:
        """404 for a record the user may not read; 403 for one they may read but not ``action``."""
        if not self.permits(session, record, RecordAction.READ):
            raise NotFound(f"There is no {record.entity_key} record #{record.id}.")
        if action is not RecordAction.READ and not self.permits(session, record, action):
            scope = self.grant(record.entity_key, action).scope
            where = f"; you may {action.value} {scope.value} records only" if scope else ""
            raise Forbidden(f"Your role{self._role_words()} may not {action.value} "
                            f"{record.entity_key} #{record.id}{where}.")

    @property
    def _dialect(self) -> str:
        return self._cache.get("dialect", "sqlite")

    # --- fields ----------------------------------------------------------------------------

    def field_access(self, entity_key: str) -> Mapping[str, str]:
        if self.superuser:
            return {}
        return (self.rules.get("fields") or {}).get(entity_key) or {}

    def hidden(self, entity_key: str) -> frozenset[str]:
        """Fields hidden from this role; never the entity's title, which names the record everywhere."""
        hidden = frozenset(k for k, v in self.field_access(entity_key).items() if v == FieldAccess.HIDDEN.value)
        return hidden - {self._title_field(entity_key)} if hidden else hidden

    def _title_field(self, entity_key: str) -> str | None:
        from formloom.runtime import catalog

        titles = self._cache.setdefault("titles", {})
        if entity_key not in titles:
            try:
                titles[entity_key] = catalog.entity(self._cache["session"], self.app, entity_key).title_field
            except NotFound:
                titles[entity_key] = None
        return titles[entity_key]

    def visible_entity(self, entity: CompiledEntity) -> CompiledEntity:
        """The entity as this role sees it: its hidden fields left out (for pages and forms)."""
        hidden = self.hidden(entity.key)
        if not hidden:
            return entity
        schema = {**entity.schema,
                  "properties": {k: v for k, v in entity.schema.get("properties", {}).items() if k not in hidden},
                  "required": [k for k in entity.schema.get("required", []) if k not in hidden]}
        return replace(entity, fields=tuple(f for f in entity.fields if f.key not in hidden),
                       by_key={k: f for k, f in entity.by_key.items() if k not in hidden},
                       kinds={k: v for k, v in entity.kinds.items() if k not in hidden}, schema=schema)

    def visible_form(self, entity_key: str, form_body: Mapping) -> Mapping:
        """A form body without the items of hidden fields."""
        hidden = self.hidden(entity_key)
        if not hidden:
            return form_body
        def kept(item: Any) -> bool:
            return (item.get("field") if isinstance(item, Mapping) else item) not in hidden
        sections = [{**s, "fields": [i for i in s.get("fields", []) if kept(i)]}
                    for s in form_body.get("sections", [])]
        return {**form_body, "sections": [s for s in sections if s["fields"]]}

    def read_only(self, entity_key: str) -> frozenset[str]:
        return frozenset(k for k, v in self.field_access(entity_key).items() if v == FieldAccess.READ_ONLY.value)

    def visible_data(self, entity_key: str, data: Mapping[str, Any]) -> dict:
        """``data`` without the fields hidden from this role."""
        hidden = self.hidden(entity_key)
        return {k: v for k, v in data.items() if k not in hidden}

    def refuse_locked_fields(self, entity_key: str, given: Iterable[str], before: Mapping[str, Any],
                             after: Mapping[str, Any]) -> None:
        """Refuse a change to a hidden or read-only field (sending its value back unchanged passes)."""
        from formloom.runtime.validation import RecordValidationError

        locked = self.hidden(entity_key) | self.read_only(entity_key)
        problems = {k: [f"Your role may not change field '{k}'; leave it out."]
                    for k in given if k in locked and after.get(k) != before.get(k)}
        if problems:
            raise RecordValidationError(problems)


# --- building a policy ----------------------------------------------------------------------

MEMO = "formloom.policies"


def policy(session: Session, user: User, app: App) -> Policy:
    """The policy of ``user`` in ``app`` (remembered for the session; publishing clears it)."""
    memo = session.info.setdefault(MEMO, {})
    key = (user.id, app.id, getattr(user, "token_scopes", None))
    if key not in memo:
        memo[key] = _build(session, user, app)
    return memo[key]


def _build(session: Session, user: User, app: App) -> Policy:
    member = session.get(AppMember, (app.id, user.id))
    role = member.role if member is not None else None
    superuser = user.is_admin or role == AppRole.ADMIN.value
    rules = {} if role is None else role_rules(session, app, role)
    result = Policy(user, app, role, superuser and _token_allows_all(user), rules,
                    _team_ids(session, user))
    result._cache.update(dialect=session.get_bind().dialect.name, session=session)
    if superuser and not result.superuser:
        result.rules = BUILT_IN[AppRole.ADMIN.value]
    return _limited_by_token(user, result)


def role_rules(session: Session, app: App, role: str) -> Mapping:
    """The rules of ``role`` in ``app``: its entry in the access definition, else the built-in one."""
    from formloom.runtime import catalog

    row = catalog.published_version(session, app, "access", ACCESS_KEY)
    for entry in (row.body.get("roles") if row else None) or []:
        if entry.get("key") == role:
            return entry
    return BUILT_IN.get(role, {})


def redact_for_role(session: Session, app: App, role: str, record: Record) -> dict:
    """What a role may see of a record, for senders with no user behind them (webhooks).

    Fields hidden from the role are left out; a role that may not read the entity, or that the
    app does not know, gets the record's id and entity only.
    """
    from formloom.runtime import catalog

    known = role in BUILT_IN or any(
        entry.get("key") == role for entry in (getattr(catalog.published_version(
            session, app, "access", ACCESS_KEY), "body", None) or {}).get("roles", []))
    rules = role_rules(session, app, role) if known else {}
    stand_in = Policy(User(id=0), app, role, role == AppRole.ADMIN.value, rules)
    stand_in._cache.update(dialect=session.get_bind().dialect.name, session=session)
    base = {"id": record.id, "entity": record.entity_key}
    if not stand_in.allows(record.entity_key, RecordAction.READ):
        return base
    return {**base, "title": record.title, "version": record.version,
            "data": stand_in.visible_data(record.entity_key, record.data)}


def _team_ids(session: Session, user: User) -> frozenset[int]:
    mine = select(TeamMember.team_id).where(TeamMember.user_id == user.id)
    managed = select(Team.id).where(Team.manager_id == user.id)
    teams = mine.union(managed).subquery()
    ids = set(session.scalars(select(TeamMember.user_id).where(TeamMember.team_id.in_(select(teams)))))
    ids.update(session.scalars(select(Team.manager_id).where(Team.id.in_(select(teams)),
                                                             Team.manager_id.is_not(None))))
    return frozenset(ids | {user.id})


def _token_allows_all(user: User) -> bool:
    return getattr(user, "token_scopes", None) is None


_TOKEN_ACTIONS = {RecordAction.CREATE: Action.CREATE_RECORD, RecordAction.READ: Action.READ_RECORDS,
                  RecordAction.UPDATE: Action.UPDATE_RECORD, RecordAction.DELETE: Action.DELETE_RECORD,
                  RecordAction.EXPORT: Action.EXPORT_RECORDS, RecordAction.IMPORT: Action.IMPORT_RECORDS}


def _limited_by_token(user: User, result: Policy) -> Policy:
    """A token with scopes keeps only the record actions its scopes name."""
    if _token_allows_all(user):
        return result
    from formloom.platform.auth import token_actions

    allowed = token_actions(user)
    entities = {}
    for name, entry in (result.rules.get("entities") or {}).items():
        entities[name] = {a: v for a, v in entry.items() if _TOKEN_ACTIONS[RecordAction(a)] in allowed}
    result.rules = {**result.rules, "entities": entities,
                    "build": bool(result.rules.get("build")) and Action.WRITE_DEFINITIONS in allowed,
                    "members": bool(result.rules.get("members")) and Action.MANAGE_MEMBERS in allowed}
    return result


def forget(session: Session) -> None:
    session.info.pop(MEMO, None)


def require_member(session: Session, user: User | None, app: App) -> None:
    """The app must be one the user works in (or they are a global admin)."""
    if not can(session, user, Action.VIEW_APP, app):
        raise NotFound(f"There is no app '{app.key}'.")


# --- scope conditions as SQL ----------------------------------------------------------------

def condition_sql(node: Mapping, user_id: int, dialect: str) -> ColumnElement:
    """The SQL of a scope condition (checked to use only :data:`WHEN_OPERATORS`)."""
    if "all" in node:
        return and_(true(), *[condition_sql(n, user_id, dialect) for n in node["all"]])
    if "any" in node:
        return or_(false(), *[condition_sql(n, user_id, dialect) for n in node["any"]])
    if "not" in node:
        return not_(condition_sql(node["not"], user_id, dialect))
    key, op = node["field"], node["op"]
    value = _operand(node.get("value"), user_id)
    if op in ("empty", "not_empty"):
        column = json_value(Record.data, key)
        if dialect == "postgresql":
            empty = or_(column.is_(None), column == "", column == "[]")
        else:
            empty = or_(column.is_(None), column == "",
                        literal_column(f"(json_type(records.data, '$.{key}') = 'array' AND "
                                       f"json_array_length(records.data, '$.{key}') = 0)"))
        return empty if op == "empty" else not_(empty)
    if op in ("contains", "not_contains"):
        found = _array_contains(key, value, dialect)
        return found if op == "contains" else not_(found)
    if op in ("in", "not_in"):
        found = or_(false(), *[_equals(key, _operand(v, user_id), dialect) for v in value or []])
        return found if op == "in" else not_(found)
    equal = _equals(key, value, dialect)
    return equal if op == "eq" else not_(equal)


def _operand(value: Any, user_id: int) -> Any:
    if isinstance(value, Mapping) and value.get("$user") is True:
        return user_id
    return value


def _equals(key: str, value: Any, dialect: str) -> ColumnElement:
    """``data[key] = value`` for scalars; NULL comparisons count as false (never as unknown)."""
    column = json_value(Record.data, key)
    if value is None:
        return column.is_(None)
    if dialect == "postgresql":
        text_value = "true" if value is True else "false" if value is False else str(value)
        return and_(column.is_not(None), column == text_value)
    return and_(column.is_not(None), column == (int(value) if isinstance(value, bool) else value))


def _array_contains(key: str, value: Any, dialect: str) -> ColumnElement:
    if dialect == "postgresql":
        return text(f"coalesce((records.data -> '{key}') @> CAST(:v AS jsonb), false)").bindparams(
            bindparam("v", json.dumps([value]), unique=True))
    each = func.json_each(Record.data, f"$.{key}").table_valued("value")
    return exists(select(literal_column("1")).select_from(each).where(each.c.value == value))


def when_problems(condition: Any, kinds: Mapping[str, str], path: str) -> list[tuple[str, str]]:
    """Problems of a scope condition: the condition language's own, then the SQL subset."""
    from formloom.runtime import conditions

    problems = list(conditions.check(condition, kinds, path))
    if problems:
        return problems
    return list(_subset_problems(condition, kinds, path))


def _subset_problems(node: Any, kinds: Mapping[str, str], path: str):
    for combinator in ("all", "any"):
        if combinator in node:
            for i, child in enumerate(node[combinator]):
                yield from _subset_problems(child, kinds, f"{path}.{combinator}[{i}]")
            return
    if "not" in node:
        yield from _subset_problems(node["not"], kinds, f"{path}.not")
        return
    if node["op"] not in WHEN_OPERATORS:
        yield (f"{path}.op", f"A scope condition may use {', '.join(sorted(WHEN_OPERATORS))}; "
                             f"'{node['op']}' cannot be used to choose which records a role sees.")
    kind = kinds.get(node["field"])
    if kind not in WHEN_KINDS:
        yield (f"{path}.field", f"A scope condition may test choice, text, yes/no, user and relation "
                                f"fields; '{node['field']}' holds {kind} values.")
    elif node["op"] in WHEN_OPERATORS and node["op"] not in WHEN_OPERATORS_BY_KIND[kind]:
        several = kind in ("list", "ids")
        yield (f"{path}.op", f"Field '{node['field']}' holds {'several values' if several else 'one value'}; "
                             f"a scope condition on it may use {', '.join(WHEN_OPERATORS_BY_KIND[kind])}, "
                             f"not '{node['op']}'.")
    values = node.get("value") if isinstance(node.get("value"), list) else [node.get("value")]
    for value in values:
        if isinstance(value, Mapping) and set(value) != {"$user"}:
            yield (f"{path}.value", 'A scope condition compares with fixed values or {"$user": true} '
                                    "(the person asking); other references cannot be used here.")
