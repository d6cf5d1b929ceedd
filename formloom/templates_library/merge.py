"""Three-way, additive merge of one definition: what a template installed, what the app holds now, what
the newer template says.

The rules (docs/templates.md): whatever the newer template adds and the app lacks is added; every
change the admin made is kept (labels, changed options, removed fields, form items or rule actions,
changed conditions); where the template and the admin both changed the same thing, the admin's value
stays and the place is reported as skipped with both values. Nothing is ever removed: what the
template drops stays in the app.

Lists of objects are matched by identity (``key``, else ``value``, else ``from``/``to``); other
lists of objects (form sections, rule actions) by position; lists of plain values (a section's
fields, the navigation, a gate's required fields) as ordered sets. A condition, trigger or formula
is one value: it is merged whole, never item by item.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# Keys whose value is one thing to the admin: merging inside a condition could build a condition
# neither side wrote.
ATOMIC_KEYS = frozenset({"condition", "when", "visible_when", "required_when", "trigger", "expression",
                         "formula", "default", "to", "from", "value", "set", "formulas", "approvers"})
_MISSING = object()


@dataclass
class Skip:
    """A place the newer template changes that the admin changed too (or removed): the admin's stays."""

    path: str
    template: Any  # the newer template's value (None when it removed the thing)
    app: Any  # the app's value (None when the admin removed the thing)
    reason: str

    def as_dict(self) -> dict:
        return {"path": self.path, "template": self.template, "app": self.app, "reason": self.reason}


@dataclass
class MergeResult:
    body: Any
    added: list[str] = field(default_factory=list)  # paths of what the template added
    skipped: list[Skip] = field(default_factory=list)


def merge(base: Any, mine: Any, theirs: Any) -> MergeResult:
    """Merge ``theirs`` (new template) into ``mine`` (the app) given ``base`` (what was installed)."""
    result = MergeResult(body=None)
    result.body = _merge(base, mine, theirs, "$", result)
    return result


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _merge(base: Any, mine: Any, theirs: Any, path: str, out: MergeResult, atomic: bool = False) -> Any:
    if _same(mine, theirs) or _same(theirs, base):
        return mine
    if _same(mine, base):
        return theirs
    if not atomic and isinstance(mine, dict) and isinstance(theirs, dict):
        return _merge_dicts(base if isinstance(base, dict) else {}, mine, theirs, path, out)
    if not atomic and isinstance(mine, list) and isinstance(theirs, list):
        return _merge_lists(base if isinstance(base, list) else [], mine, theirs, path, out)
    out.skipped.append(Skip(path, theirs, mine, "changed in the app and in the template; the app's value is kept"))
    return mine


def _merge_dicts(base: dict, mine: dict, theirs: dict, path: str, out: MergeResult) -> dict:
    merged = dict(mine)
    for key, new in theirs.items():
        where = f"{path}.{key}"
        old = base.get(key, _MISSING)
        if key not in mine:
            if old is _MISSING:
                merged[key] = new
                out.added.append(where)
            elif not _same(old, new):
                out.skipped.append(Skip(where, new, None, "removed in the app; it stays removed"))
            continue
        merged[key] = _merge(None if old is _MISSING else old, mine[key], new, where, out,
                             atomic=key in ATOMIC_KEYS)
    return merged


def _identity(item: Any) -> tuple | None:
    if not isinstance(item, dict):
        return None
    for name in ("key", "value"):
        if isinstance(item.get(name), (str, int)) and not isinstance(item.get(name), bool):
            return (name, item[name])
    if "from" in item and "to" in item:
        return ("transition", json.dumps(item["from"], sort_keys=True), json.dumps(item["to"], sort_keys=True))
    return None


def _merge_lists(base: list, mine: list, theirs: list, path: str, out: MergeResult) -> list:
    if all(not isinstance(x, (dict, list)) for x in base + mine + theirs):
        return _merge_value_lists(base, mine, theirs, path, out)
    if all(_identity(x) is not None for x in base + mine + theirs):
        return _merge_keyed(base, mine, theirs, path, out)
    return _merge_positional(base, mine, theirs, path, out)


def _insert_after(items: list, ident, new: Any, order: list, ident_of) -> None:
    """Insert ``new`` after the item that precedes it in ``order`` (the template's), else at the end."""
    position = [ident_of(x) for x in order].index(ident)
    for previous in reversed(order[:position]):
        idents = [ident_of(x) for x in items]
        if ident_of(previous) in idents:
            items.insert(idents.index(ident_of(previous)) + 1, new)
            return
    if position == 0:
        items.insert(0, new)
    else:
        items.append(new)


def _merge_value_lists(base: list, mine: list, theirs: list, path: str, out: MergeResult) -> list:
    merged = list(mine)
    for value in theirs:
        if value not in base and value not in merged:
            _insert_after(merged, value, value, theirs, lambda x: x)
            out.added.append(f"{path}[{json.dumps(value, ensure_ascii=False)}]")
    return merged


def _label_of(ident: tuple) -> str:
    return f"[{ident[0]}={ident[1]}]" if ident[0] != "transition" else f"[{ident[1]}->{ident[2]}]"


def _merge_keyed(base: list, mine: list, theirs: list, path: str, out: MergeResult) -> list:
    base_by = {_identity(x): x for x in base}
    mine_by = {_identity(x): i for i, x in enumerate(mine)}
    merged = list(mine)
    for item in theirs:
        ident = _identity(item)
        where = f"{path}{_label_of(ident)}"
        if ident in mine_by:
            merged[mine_by[ident]] = _merge(base_by.get(ident), merged[mine_by[ident]], item, where, out)
        elif ident not in base_by:
            _insert_after(merged, ident, item, theirs, _identity)
            mine_by = {_identity(x): i for i, x in enumerate(merged)}
            out.added.append(where)
        elif not _same(base_by[ident], item):
            out.skipped.append(Skip(where, item, None, "removed in the app; it stays removed"))
    return merged


def _merge_positional(base: list, mine: list, theirs: list, path: str, out: MergeResult) -> list:
    """Objects without identity (form sections, rule actions): the n-th of each side are the same one.

    An item the admin removed or reordered cannot be told from one they changed, so when the app's
    list is not as long as the installed one, only appended template items are merged in.
    """
    merged = list(mine)
    aligned = len(mine) == len(base)
    for i, item in enumerate(theirs):
        where = f"{path}[{i}]"
        if i < len(base):
            if aligned:
                merged[i] = _merge(base[i], mine[i], item, where, out)
            elif not _same(base[i], item):
                out.skipped.append(Skip(where, item, None, "the app's list was reordered or shortened; "
                                                           "the template's change is not applied"))
        elif not any(_same(item, x) for x in merged):
            merged.append(item)
            out.added.append(where)
    return merged
