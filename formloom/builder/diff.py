"""Semantic differences between two versions of a definition, each readable as a sentence.

Things are matched by identity, not position: entity fields and sub-table columns by ``key``,
options by ``value``, pipeline stages and checklist items by ``key``, field references on a form
by key (wherever they sit); form sections and rule actions by position. An item with a key that
appears twice is matched by its occurrence (the second "amount" with the second "amount").
A change's path points into the new body, or into the old one for what was removed.

Columns of a sub-table use the field codes (``field_added``, ``field_label_changed``, ...) with a
dotted subject (``lines.qty``) and a nested path (``$.fields[9].fields[1]``); they are described
as columns. Whatever has no code of its own is reported with the catch-all of its level
(``field_setting_changed``, ``option_setting_changed``, ``section_setting_changed``,
``form_field_setting_changed``, ``stage_setting_changed``, ``stage_gate_changed``) or, at the top
and wherever a structure is not the expected one, ``property_changed``: ``changes()`` is empty
exactly when the two bodies are equal as JSON (``true`` is not ``1``; ``1`` is ``1.0``; key order
does not count).
"""
from __future__ import annotations

import json
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from formloom.runtime.access import BUILT_IN
from formloom.runtime.fields import FIELD_TYPES
from formloom.runtime.labels import LOCALES, text_of


@dataclass(frozen=True)
class Change:
    """One difference. ``label`` is the changed thing's label and ``owner`` that of what holds it
    (the field of an option, the sub-table of a column, the stage of a checklist item, the section
    of a form field), both from the new body (the old one for removals)."""

    code: str
    path: str
    subject: str
    before: Any = None
    after: Any = None
    label: Any = None
    owner: Any = None

    def describe(self, locale: str = "en") -> str:
        """A full sentence in English, or in Chinese for ``zh-CN``; plain text."""
        en, zh = TEMPLATES[_variant(self, locale)]
        return (zh if locale == "zh-CN" else en).format(**_params(self, locale == "zh-CN", locale))


def changes(kind: str, old: dict | None, new: dict | None) -> list[Change]:
    """Every difference from ``old`` to ``new`` (``None``: not there), in document order."""
    if old is None and new is None:
        return []
    if old is None:
        return [Change("created", "$", _key_of(new), after=new, label=_get(new, "label"))]
    if new is None:
        return [Change("deleted", "$", _key_of(old), before=old, label=_get(old, "label"))]
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [] if _same(old, new) else [Change("property_changed", "$", "definition", old, new)]
    top = _Item("", label=_pick(old, new, "label"))
    codes = {"label": "label_changed", **TOP_CODES.get(kind, {})}
    return _props(old, new, _At("$", "$"), top, codes, "property_changed", _top_special(kind))


# --- matching ---------------------------------------------------------------------------------

_ABSENT = object()


class _At(NamedTuple):
    """A place in both bodies: its path in the old body and in the new one."""

    old: str
    new: str

    def prop(self, name: str) -> _At:
        return _At(self.old + _step(name), self.new + _step(name))

    def item(self, i: int, j: int) -> _At:
        return _At(f"{self.old}[{i}]", f"{self.new}[{j}]")


Handler = Callable[[Any, Any, _At], list[Change]]
WITH_PROPERTY = frozenset({
    "label_changed", "property_changed", "field_condition_changed", "field_setting_changed",
    "option_setting_changed", "section_condition_changed", "section_setting_changed",
    "form_field_condition_changed", "form_field_setting_changed", "stage_setting_changed", "stage_gate_changed",
    "role_power_changed", "role_setting_changed",
})
CONDITIONS = ("visible_when", "required_when", "readonly_when")


@dataclass(frozen=True)
class _Item:
    """What a level's changes are about: a subject, and the labels that name it."""

    subject: str
    label: Any = None
    owner: Any = None

    def change(self, code: str, path: str, before: Any = None, after: Any = None, prop: str = "") -> Change:
        subject = self.subject
        if prop and code in WITH_PROPERTY:
            subject = f"{subject}.{prop}" if subject else prop
        return Change(code, path, subject or prop, before, after, self.label, self.owner)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, object key order does not count."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return False
    return a == b


def _step(name: str) -> str:
    return f".{name}" if re.fullmatch(r"\w+", name) else f"['{name}']"


def _get(body: Any, name: str) -> Any:
    return body.get(name) if isinstance(body, dict) else None


def _pick(old: Any, new: Any, name: str) -> Any:
    value = _get(new, name)
    return _get(old, name) if value is None else value


def _key_of(body: Any) -> str:
    key = _get(body, "key")
    return key if isinstance(key, str) else "definition"


def _differing(old: dict, new: dict, at: _At) -> Iterator[tuple[str, Any, Any, _At, str]]:
    """Each property whose values differ: its name, old and new value (None when absent), its place,
    and the path to report (in the new body; in the old one when the property is gone)."""
    for name in [*new, *(k for k in old if k not in new)]:
        a, b = old.get(name, _ABSENT), new.get(name, _ABSENT)
        if not _same(a, b):
            sub = at.prop(str(name))
            yield str(name), None if a is _ABSENT else a, None if b is _ABSENT else b, sub, \
                sub.old if b is _ABSENT else sub.new


def _props(old: dict, new: dict, at: _At, item: _Item, codes: Mapping[str, str], other: str,
           special: Mapping[str, Handler] | None = None) -> list[Change]:
    """Changes of one object's properties; a property no handler explains gets its code or ``other``."""
    out: list[Change] = []
    for name, a, b, sub, path in _differing(old, new, at):
        found = special[name](a, b, sub) if special and name in special else []
        out += found or [item.change(codes.get(name, other), path, a, b, name)]
    return out


def _identities(items: Any, ident: str) -> list[tuple[str | None, int]] | None:
    """(key, occurrence) of each object of a list; None when it is not a list of objects."""
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        return None
    seen: Counter = Counter()
    out = []
    for item in items:
        key = item.get(ident) if isinstance(item.get(ident), str) else None
        out.append((key, seen[key]))
        seen[key] += 1
    return out


def _name(identity: tuple[Any, int]) -> str:
    key, n = identity
    return (key if isinstance(key, str) else "?") + (f"#{n + 1}" if n else "")


def _moved(old_ids: list, new_ids: list) -> set:
    """Identities in both lists that left their relative order: all but one longest kept run."""
    rank = {k: i for i, k in enumerate(old_ids)}
    seq = [k for k in new_ids if k in rank]
    return set(seq) - _longest_increasing(seq, rank)


def _longest_increasing(seq: list, rank: dict) -> set:
    """The items of one longest run of ``seq`` whose ranks increase (patience sorting)."""
    tails: list[int] = []
    tail_ranks: list[int] = []
    before = [-1] * len(seq)
    for i, k in enumerate(seq):
        at = bisect_left(tail_ranks, rank[k])
        before[i] = tails[at - 1] if at else -1
        if at == len(tails):
            tails.append(i)
            tail_ranks.append(rank[k])
        else:
            tails[at], tail_ranks[at] = i, rank[k]
    kept, i = set(), tails[-1] if tails else -1
    while i >= 0:
        kept.add(seq[i])
        i = before[i]
    return kept


def _collection(old: Any, new: Any, at: _At, ident: str, noun: str, subject: Callable[[str], str],
                item: Callable[[dict, dict, _At, str], list[Change]], owner: Any = None) -> list[Change]:
    """A list matched by identity: removed, added, moved out of relative order, and changed items."""
    old_ids, new_ids = _identities(old, ident), _identities(new, ident)
    if old_ids is None or new_ids is None:
        return []
    where_old, where_new = {k: i for i, k in enumerate(old_ids)}, {k: j for j, k in enumerate(new_ids)}
    moved = _moved(old_ids, new_ids)
    out = [Change(f"{noun}_removed", f"{at.old}[{i}]", subject(_name(k)), before=old[i],
                  label=old[i].get("label"), owner=owner) for i, k in enumerate(old_ids) if k not in where_new]
    for j, k in enumerate(new_ids):
        path, now = f"{at.new}[{j}]", new[j]
        if k not in where_old:
            out.append(Change(f"{noun}_added", path, subject(_name(k)), after=now, label=now.get("label"), owner=owner))
            continue
        i = where_old[k]
        if k in moved:
            out.append(Change(f"{noun}_moved", path, subject(_name(k)), i, j, _pick(old[i], now, "label"), owner))
        if not _same(old[i], now):
            out += item(old[i], now, at.item(i, j), subject(_name(k)))
    return out


# --- entities ---------------------------------------------------------------------------------

def _fields(old: Any, new: Any, at: _At, prefix: str = "", owner: Any = None) -> list[Change]:
    return _collection(old, new, at, "key", "field", lambda k: prefix + k,
                       lambda a, b, at, subject: _field(a, b, at, subject, owner), owner)


def _field(old: dict, new: dict, at: _At, subject: str, owner: Any) -> list[Change]:
    label = _pick(old, new, "label")
    codes = {"label": "field_label_changed", "type": "field_type_changed", "required": "field_required_changed",
             **dict.fromkeys(CONDITIONS, "field_condition_changed")}
    special: dict[str, Handler] = {
        "options": lambda a, b, at: _collection(a, b, at, "value", "option", lambda k: f"{subject}.{k}",
                                                lambda x, y, p, s: _option(x, y, p, s, label), label),
        "fields": lambda a, b, at: _fields(a, b, at, f"{subject}.", label),
    }
    return _props(old, new, at, _Item(subject, label, owner), codes, "field_setting_changed", special)


def _option(old: dict, new: dict, at: _At, subject: str, field_label: Any) -> list[Change]:
    item = _Item(subject, _pick(old, new, "label"), field_label)
    codes = {"label": "option_label_changed", "color": "option_color_changed"}
    return _props(old, new, at, item, codes, "option_setting_changed")


# --- forms ------------------------------------------------------------------------------------

def _sections(old: Any, new: Any, at: _At) -> list[Change]:
    if not all(isinstance(x, list) and all(isinstance(s, dict) for s in x) for x in (old, new)):
        return []
    out: list[Change] = []
    for s in range(max(len(old), len(new))):
        place, subject = at.item(s, s), f"section {s + 1}"
        if s >= len(old):
            out.append(Change("section_added", place.new, subject, after=new[s], label=new[s].get("label")))
        elif s >= len(new):
            out.append(Change("section_removed", place.old, subject, before=old[s], label=old[s].get("label")))
        else:
            a, b = old[s], new[s]
            if isinstance(a.get("fields"), list) and isinstance(b.get("fields"), list):
                a, b = {k: v for k, v in a.items() if k != "fields"}, {k: v for k, v in b.items() if k != "fields"}
            codes = {"label": "section_label_changed", "visible_when": "section_condition_changed"}
            out += _props(a, b, place, _Item(subject, _pick(a, b, "label")), codes, "section_setting_changed")
    return out + _placements(old, new, at)


def _layout(sections: list[dict]) -> dict[tuple, tuple[int, int, Any]]:
    """Each item of each section by identity: ("field", key, occurrence) or ("text", section, occurrence)."""
    seen: Counter = Counter()
    out = {}
    for s, section in enumerate(sections):
        items = section.get("fields") if isinstance(section.get("fields"), list) else []
        texts = 0
        for j, item in enumerate(items):
            key = item.get("field") if isinstance(item, dict) else item
            if isinstance(key, str):
                identity: tuple = ("field", key, seen[key])
                seen[key] += 1
            else:
                identity, texts = ("text", s, texts), texts + 1
            out[identity] = (s, j, item)
    return out


def _placements(old: list[dict], new: list[dict], at: _At) -> list[Change]:
    """Field references and text lines of a form: matched across sections, moved, changed."""
    was, now = _layout(old), _layout(new)
    moved = {k for k in now if k in was and was[k][0] != now[k][0]}
    for s in range(min(len(old), len(new))):
        moved |= _moved([k for k in was if was[k][0] == s], [k for k in now if now[k][0] == s])
    out = [_placed(k, "removed", f"{at.old}[{s}].fields[{j}]", old[s], before=item)
           for k, (s, j, item) in was.items() if k not in now]
    for k, (s, j, item) in now.items():
        path = f"{at.new}[{s}].fields[{j}]"
        if k not in was:
            out.append(_placed(k, "added", path, new[s], after=item))
            continue
        s0, j0, old_item = was[k]
        if k in moved:
            before, after = {"section": s0, "position": j0}, {"section": s, "position": j}
            out.append(_placed(k, "moved", path, new[s], before, after))
        if not _same(old_item, item):
            out += _placed_item(k, old_item, item, _At(f"{at.old}[{s0}].fields[{j0}]", path), new[s])
    return out


def _placed(identity: tuple, verb: str, path: str, section: dict, before: Any = None, after: Any = None) -> Change:
    kind, key, n = identity
    if kind == "text":
        return Change(f"form_text_{verb}", path, f"section {key + 1} text {n + 1}", before, after,
                      owner=section.get("label"))
    return Change(f"form_field_{verb}", path, _name((key, n)), before, after, owner=section.get("label"))


def _placed_item(identity: tuple, old: Any, new: Any, at: _At, section: dict) -> list[Change]:
    if identity[0] == "text":
        return [_placed(identity, "changed", at.new, section, old, new)]
    a, b = ({"field": x} if isinstance(x, str) else x for x in (old, new))
    item = _Item(_name(identity[1:]), owner=section.get("label"))
    found = _props(a, b, at, item, {"visible_when": "form_field_condition_changed"}, "form_field_setting_changed")
    return found or [item.change("form_field_setting_changed", at.new, old, new)]


# --- pipelines --------------------------------------------------------------------------------

def _stages(old: Any, new: Any, at: _At) -> list[Change]:
    return _collection(old, new, at, "key", "stage", lambda k: f"stage {k}", _stage)


def _stage(old: dict, new: dict, at: _At, subject: str) -> list[Change]:
    label = _pick(old, new, "label")
    codes = {"label": "stage_label_changed", "color": "stage_color_changed", "probability": "stage_probability_changed",
             "outcome": "stage_outcome_changed", "gate": "stage_gate_changed", "approval": "approval_changed"}
    special = {"gate": lambda a, b, at: _gate(a, b, at, subject, label)}
    return _props(old, new, at, _Item(subject, label), codes, "stage_setting_changed", special)


def _gate(old: Any, new: Any, at: _At, stage: str, stage_label: Any) -> list[Change]:
    if not all(x is None or isinstance(x, dict) for x in (old, new)):
        return []

    def item(a: dict, b: dict, place: _At, subject: str) -> list[Change]:
        checklist_item = _Item(subject, _pick(a, b, "label"), stage_label)
        return _props(a, b, place, checklist_item, {"label": "checklist_item_label_changed"}, "stage_gate_changed")

    checklist = {"checklist": lambda a, b, at: _collection(a, b, at, "key", "checklist_item",
                                                           lambda k: f"{stage}.{k}", item, stage_label)}
    return _props(old or {}, new or {}, at, _Item(f"{stage}.gate", stage_label), {}, "stage_gate_changed", checklist)


# --- rules ------------------------------------------------------------------------------------

def _actions(old: Any, new: Any, at: _At) -> list[Change]:
    if not (isinstance(old, list) and isinstance(new, list)):
        return []
    out = []
    for i in range(max(len(old), len(new))):
        place, subject = at.item(i, i), f"action {i + 1}"
        if i >= len(old):
            out.append(Change("action_added", place.new, subject, after=new[i]))
        elif i >= len(new):
            out.append(Change("action_removed", place.old, subject, before=old[i]))
        elif not _same(old[i], new[i]):
            out.append(Change("action_changed", place.new, subject, old[i], new[i]))
    return out


# --- access -----------------------------------------------------------------------------------
# Roles are matched by key; a role's grants per (entity, action) and its field rules per (entity,
# field), so that each sentence says what one role may now do.

def _roles(old: Any, new: Any, at: _At) -> list[Change]:
    return _collection(old, new, at, "key", "role", lambda k: f"role {k}", _role)


def _role(old: dict, new: dict, at: _At, subject: str) -> list[Change]:
    label = _pick(old, new, "label")
    codes = {"label": "role_label_changed", "build": "role_power_changed", "members": "role_power_changed"}
    special: dict[str, Handler] = {
        "entities": lambda a, b, at: _pairs(a, b, at, f"{subject}.entities", "grant_changed", label),
        "fields": lambda a, b, at: _pairs(a, b, at, f"{subject}.fields", "field_access_changed", label),
    }
    return _props(old, new, at, _Item(subject, label), codes, "role_setting_changed", special)


def _pairs(old: Any, new: Any, at: _At, subject: str, code: str, label: Any) -> list[Change]:
    """A map of maps (entity -> action -> grant, entity -> field -> rule): one change per inner value.

    Anything else (a map that is not one of maps) is left to the role's catch-all.
    """
    maps = [x if x is not None else {} for x in (old, new)]
    if not all(isinstance(m, dict) and all(v is None or isinstance(v, dict) for v in m.values()) for m in maps):
        return []
    out = []
    for outer, a, b, place, where in _differing(*maps, at):
        inner = [Change(code, path, f"{subject}.{outer}.{name}", x, y, label)
                 for name, x, y, _, path in _differing(a or {}, b or {}, place)]
        out += inner or [Change("role_setting_changed", where, f"{subject}.{outer}", a, b, label)]  # {} vs absent
    return out


TOP_CODES: dict[str, dict[str, str]] = {
    "pipeline": {"transitions": "transitions_changed"},
    "rule": {"trigger": "trigger_changed", "condition": "condition_changed", "enabled": "rule_enabled_changed"},
}


def _top_special(kind: str) -> dict[str, Handler]:
    return {"entity": {"fields": _fields}, "form": {"sections": _sections}, "pipeline": {"stages": _stages},
            "rule": {"actions": _actions}, "access": {"roles": _roles}}.get(kind, {})


# --- sentences --------------------------------------------------------------------------------

TEMPLATES: dict[str, tuple[str, str]] = {
    "created": ("{kind} {name} ({subject}) created.", "新建{kind}{name}（{subject}）。"),
    "deleted": ("{kind} {name} ({subject}) deleted.", "删除{kind}{name}（{subject}）。"),
    "label_changed": ("Label changed from {b} to {a}.", "名称由{b}改为{a}。"),
    "label_changed/same": ("Label {a}: translations changed.", "名称{a}的翻译已修改。"),
    "property_changed": ("Property {qsubject} changed from {b} to {a}.", "属性{qsubject}由{b}改为{a}。"),
    "field_added": ("{what} ({subject}) added ({type}).", "新增{what}（{subject}），类型为{type}。"),
    "field_removed": ("{what} ({subject}) removed.", "删除{what}（{subject}）。"),
    "field_moved": ("{what} moved {moved}.", "{what}{moved}。"),
    "field_label_changed": ("{what}: label changed from {b} to {a}.", "{what}：名称由{b}改为{a}。"),
    "field_label_changed/same": ("{what}: label translations changed.", "{what}：名称的翻译已修改。"),
    "field_type_changed": ("{what}: type changed from {b} to {a}.", "{what}：类型由{b}改为{a}。"),
    "field_required_changed": ("{what}: required changed from {b} to {a}.", "{what}：必填由{b}改为{a}。"),
    "field_required_changed/on": ("{what} is now required.", "{what}改为必填。"),
    "field_required_changed/off": ("{what} is no longer required.", "{what}改为非必填。"),
    "field_condition_changed": ("{what}: {cond} condition {verb}.", "{what}：{cond}条件已{verb}。"),
    "field_setting_changed": ("{what}: {prop} changed from {b} to {a}.", "{what}：{prop}由{b}改为{a}。"),
    "option_added": ("Option {name} added to {holder}.", "{holder}新增选项{name}。"),
    "option_removed": ("Option {name} removed from {holder}.", "从{holder}中删除选项{name}。"),
    "option_moved": ("Option {name} of {holder} moved {moved}.", "{holder}的选项{name}{moved}。"),
    "option_label_changed": ("Option {b} of {holder} renamed to {a}.", "{holder}的选项{b}改名为{a}。"),
    "option_label_changed/same": ("Option {name} of {holder}: label translations changed.",
                                  "{holder}的选项{name}：名称的翻译已修改。"),
    "option_color_changed": ("Option {name} of {holder}: color changed from {b} to {a}.",
                             "{holder}的选项{name}：颜色由{b}改为{a}。"),
    "option_setting_changed": ("Option {name} of {holder}: {prop} changed from {b} to {a}.",
                               "{holder}的选项{name}：{prop}由{b}改为{a}。"),
    "section_added": ("{Section} added.", "新增{section}。"),
    "section_removed": ("{Section} removed.", "删除{section}。"),
    "section_label_changed": ("{Section}: label changed from {b} to {a}.", "{section}：标题由{b}改为{a}。"),
    "section_label_changed/same": ("{Section}: label translations changed.", "{section}：标题的翻译已修改。"),
    "section_condition_changed": ("{Section}: visibility condition {verb}.", "{section}：显示条件已{verb}。"),
    "section_setting_changed": ("{Section}: {prop} changed from {b} to {a}.", "{section}：{prop}由{b}改为{a}。"),
    "form_field_added": ("Field {key} added to {section}.", "字段{key}已添加到{section}。"),
    "form_field_removed": ("Field {key} removed from {section}.", "字段{key}已从{section}移除。"),
    "form_field_moved": ("Field {key} moved to position {a} of {section}.", "字段{key}移到{section}的第 {a} 位。"),
    "form_field_condition_changed": ("Field {key} in {section}: visibility condition {verb}.",
                                     "{section}中的字段{key}：显示条件已{verb}。"),
    "form_field_setting_changed": ("Field {key} in {section}: {prop} changed from {b} to {a}.",
                                   "{section}中的字段{key}：{prop}由{b}改为{a}。"),
    "form_field_setting_changed/whole": ("Field {key} in {section}: layout changed from {b} to {a}.",
                                         "{section}中的字段{key}：布局由{b}改为{a}。"),
    "form_text_added": ("A text line added to {section}.", "{section}新增一段说明文字。"),
    "form_text_removed": ("A text line removed from {section}.", "从{section}中删除一段说明文字。"),
    "form_text_moved": ("A text line moved to position {a} of {section}.", "一段说明文字移到{section}的第 {a} 位。"),
    "form_text_changed": ("A text line of {section} changed from {b} to {a}.", "{section}的说明文字由{b}改为{a}。"),
    "stage_added": ("{stage} ({key}) added.", "新增{stage}（{key}）。"),
    "stage_removed": ("{stage} removed.", "删除{stage}。"),
    "stage_moved": ("{stage} moved {moved}.", "{stage}{moved}。"),
    "stage_label_changed": ("{stage}: label changed from {b} to {a}.", "{stage}：名称由{b}改为{a}。"),
    "stage_label_changed/same": ("{stage}: label translations changed.", "{stage}：名称的翻译已修改。"),
    "stage_color_changed": ("{stage}: color changed from {b} to {a}.", "{stage}：颜色由{b}改为{a}。"),
    "stage_probability_changed": ("{stage}: win probability changed from {b} to {a}.",
                                  "{stage}：赢单概率由{b}改为{a}。"),
    "stage_outcome_changed": ("{stage}: outcome changed from {b} to {a}.", "{stage}：结果由{b}改为{a}。"),
    "stage_gate_changed": ("{stage}: entry gate changed ({detail}).", "{stage}：进入条件已修改（{detail}）。"),
    "stage_setting_changed": ("{stage}: {prop} changed from {b} to {a}.", "{stage}：{prop}由{b}改为{a}。"),
    "checklist_item_added": ("Checklist item {name} added to {holder}.", "{holder}新增检查项{name}。"),
    "checklist_item_removed": ("Checklist item {name} removed from {holder}.", "从{holder}中删除检查项{name}。"),
    "checklist_item_moved": ("Checklist item {name} of {holder} moved {moved}.", "{holder}的检查项{name}{moved}。"),
    "checklist_item_label_changed": ("Checklist item of {holder}: label changed from {b} to {a}.",
                                     "{holder}的检查项：名称由{b}改为{a}。"),
    "checklist_item_label_changed/same": ("Checklist item {name} of {holder}: label translations changed.",
                                          "{holder}的检查项{name}：名称的翻译已修改。"),
    "approval_changed": ("{stage}: approval {verb}.", "{stage}：审批已{verb}。"),
    "transitions_changed": ("Stage transitions changed.", "阶段流转规则已修改。"),
    "trigger_changed": ("Trigger changed from {b} to {a}.", "触发方式由{b}改为{a}。"),
    "trigger_changed/same": ("Trigger {a}: settings changed.", "触发方式{a}的设置已修改。"),
    "condition_changed": ("Rule condition {verb}.", "规则条件已{verb}。"),
    "action_added": ("Action {n} ({type}) added.", "新增第 {n} 个动作（{type}）。"),
    "action_removed": ("Action {n} ({type}) removed.", "删除第 {n} 个动作（{type}）。"),
    "action_changed": ("Action {n} ({type}) changed.", "第 {n} 个动作（{type}）已修改。"),
    "action_changed/retyped": ("Action {n} changed from {b} to {a}.", "第 {n} 个动作由{b}改为{a}。"),
    "rule_enabled_changed": ("Rule enabled flag changed from {b} to {a}.", "规则启用标志由{b}改为{a}。"),
    "rule_enabled_changed/on": ("Rule enabled.", "规则已启用。"),
    "rule_enabled_changed/off": ("Rule disabled.", "规则已停用。"),
    "role_added": ("Role {role} ({rkey}) added.", "新增角色{role}（{rkey}）。"),
    "role_removed": ("Role {role} removed: its members may no longer do anything in the app.",
                     "删除角色{role}：其成员在本应用中不再有任何权限。"),
    "role_removed/built_in": ("Role {role} removed: its members have the built-in powers of '{rkey}' again.",
                              "删除角色{role}：其成员恢复内置角色“{rkey}”的权限。"),
    "role_moved": ("Role {role} moved {moved}.", "角色{role}{moved}。"),
    "role_label_changed": ("Role {role}: name changed from {b} to {a}.", "角色{role}：名称由{b}改为{a}。"),
    "role_label_changed/same": ("Role {role}: name translations changed.", "角色{role}：名称的翻译已修改。"),
    "grant_changed": ("Role {role} may now {grant}{was}.", "角色{role}现在可以{grant}{was}。"),
    "grant_changed/denied": ("Role {role} may no longer {grant}{was}.", "角色{role}不再可以{grant}{was}。"),
    "grant_changed/inherit": ("Role {role} may now {grant} as for any other entity (*){was}.",
                              "角色{role}现在按其他实体（*）的规则{grant}{was}。"),
    "grant_changed/other": ("Role {role}: {action} of {records} changed from {b} to {a}.",
                            "角色{role}：{records}的{action}权限由{b}改为{a}。"),
    "field_access_changed": ("Role {role}: field {field} of {entity} is now {rule}.",
                             "角色{role}：{entity}的字段{field}现在{rule}。"),
    "field_access_changed/unset": ("Role {role}: field {field} of {entity} has no rule of its own any more "
                                   "(editable).", "角色{role}：{entity}的字段{field}不再有单独规则（可编辑）。"),
    "role_power_changed": ("Role {role}: {prop} changed from {b} to {a}.", "角色{role}：{prop}由{b}改为{a}。"),
    "role_power_changed/build_on": ("Role {role} may now build this app: edit and publish its definitions, "
                                    "access included.", "角色{role}现在可以搭建本应用：修改并发布其定义（包括权限）。"),
    "role_power_changed/build_off": ("Role {role} may no longer build this app.", "角色{role}不再可以搭建本应用。"),
    "role_power_changed/members_on": ("Role {role} may now give people roles in this app.",
                                      "角色{role}现在可以为本应用的成员分配角色。"),
    "role_power_changed/members_off": ("Role {role} may no longer give people roles in this app.",
                                       "角色{role}不再可以为本应用的成员分配角色。"),
    "role_setting_changed": ("Role {role}: {prop} changed from {b} to {a}.", "角色{role}：{prop}由{b}改为{a}。"),
    "changed": ("{subject} changed.", "{subject}已修改。"),
}
CODES = tuple(code for code in TEMPLATES if "/" not in code and code != "changed")
"""Every code ``changes()`` may report."""

KINDS = {"app": ("App", "应用"), "entity": ("Entity", "实体"), "form": ("Form", "表单"),
         "pipeline": ("Pipeline", "流程"), "rule": ("Rule", "规则"), "access": ("Access definition", "权限定义"),
         "view": ("View", "视图"), "commission": ("Commission plan", "提成方案"),
         "dashboard": ("Dashboard", "仪表盘")}
CONDITION_WORDS = {"visible_when": ("visibility", "显示"), "required_when": ("required", "必填"),
                   "readonly_when": ("read-only", "只读")}
GATE_WORDS = {"gate": ("the whole gate", "整体"), "gate.required": ("required fields", "必填字段"),
              "gate.conditions": ("conditions", "条件"), "gate.checklist": ("checklist", "检查项")}
VERBS = {"added": ("added", "添加"), "removed": ("removed", "删除"), "changed": ("changed", "修改")}
LABEL_CODES = frozenset(code for code in CODES if code.endswith("label_changed"))
BUILT_IN_ROLES = frozenset(BUILT_IN) - {"admin"}
POSITION_CODES = frozenset(code for code in CODES if code.endswith("_moved"))


def _variant(change: Change, locale: str) -> str:
    code, before, after = change.code, change.before, change.after
    if code in LABEL_CODES and before is not None and after is not None \
            and _text(before, locale) == _text(after, locale) != "":
        return f"{code}/same"
    if code == "field_required_changed" and all(x is None or isinstance(x, bool) for x in (before, after)):
        return f"{code}/on" if after is True else f"{code}/off" if before is True else code
    if code == "rule_enabled_changed" and (before is not False) != (after is not False) \
            and {type(before), type(after)} <= {bool, type(None)}:
        return f"{code}/off" if after is False else f"{code}/on"
    if code == "trigger_changed" and _get(before, "type") == _get(after, "type") is not None:
        return f"{code}/same"
    if code == "action_changed" and _get(before, "type") != _get(after, "type"):
        return f"{code}/retyped"
    if code == "form_field_setting_changed" and change.path.endswith("]"):
        return f"{code}/whole"
    if code in ACCESS_VARIANTS:
        return ACCESS_VARIANTS[code](change)
    return code if code in TEMPLATES else "changed"


def _params(change: Change, zh: bool, locale: str) -> dict[str, str]:
    """Every placeholder a template may use, for this change."""
    ident = _identity(change)
    name = _quote(_text(change.label, locale) or ident, zh)
    column = re.search(r"\.fields\[\d+\]\.fields\[", change.path) is not None
    section = _section(change, zh, locale)
    stage_label = change.label if change.owner is None else change.owner
    stage = ("阶段" if zh else "Stage ") + _quote(_text(stage_label, locale) or _stage_key(change), zh)
    item = change.after if change.after is not None else change.before
    kind = KINDS.get(str(_get(item, "kind")), ("Definition", "定义"))
    what = _what(change, name, zh, locale) if column else ("字段" if zh else "Field ") + name
    b, a = (_format(change, value, zh, locale) for value in (change.before, change.after))
    prop = _last_step(change.path)
    return {
        "subject": change.subject, "qsubject": _quote(change.subject, zh), "name": name, "b": b, "a": a,
        "key": _quote(ident, zh) if change.code.startswith("form_") else ident, "prop": prop,
        "detail": _gate_words(change.subject, zh), "what": what, "holder": _holder(change, zh, locale, column),
        "Section": section[0].upper() + section[1:], "section": section, "stage": stage,
        "cond": CONDITION_WORDS.get(prop, (prop, prop))[zh], "verb": VERBS[_verb(change)][zh],
        "type": _type_word(change, item, zh, locale), "n": str(_index(change.path) + 1),
        "kind": kind[zh], "moved": _moved_words(b, a, zh),
        **(_access_params(change, zh, locale) if change.code in ACCESS_CODES else {}),
    }


# --- access sentences ---------------------------------------------------------------------------

ACCESS_CODES = frozenset({"role_added", "role_removed", "role_moved", "role_label_changed", "grant_changed",
                          "field_access_changed", "role_power_changed", "role_setting_changed"})
SCOPED_ACTIONS = ("read", "update", "delete")
ACTION_WORDS = {"create": ("create", "新建"), "read": ("read", "查看"), "update": ("change", "修改"),
                "delete": ("delete", "删除"), "export": ("export", "导出"), "import": ("import", "导入")}
SCOPE_WORDS = {"all": ("all", "全部"), "own": ("their own", "自己负责的"), "team": ("their team's", "团队负责的")}
FIELD_RULE_WORDS = {"hidden": ("hidden", "隐藏"), "read_only": ("read-only", "只读"),
                    "editable": ("editable", "可编辑")}
_PAIR = re.compile(r"^role (.*?)\.(?:entities|fields)\.(.*)\.([^.]*)$")


def _pair(change: Change) -> tuple[str, str]:
    """The (entity, action) of a grant change or the (entity, field) of a field rule change."""
    found = _PAIR.match(change.subject)
    return (found.group(2), found.group(3)) if found else ("?", "?")


def _scope(value: Any) -> str | None:
    """The scope a grant gives ("all", "own", "team"), None when it is not one."""
    scope = value.get("scope") if isinstance(value, dict) else value
    scope = "all" if scope is True else scope
    return scope if isinstance(scope, str) and scope in SCOPE_WORDS else None


def _is_grant(value: Any) -> bool:
    return value is False or _scope(value) is not None


def _grant_variant(change: Change) -> str:
    entity, _ = _pair(change)
    if change.after is None:
        return "grant_changed/denied" if entity == "*" else "grant_changed/inherit"
    if not _is_grant(change.after) or (change.before is not None and not _is_grant(change.before)):
        return "grant_changed/other"
    return "grant_changed/denied" if change.after is False else "grant_changed"


def _power_variant(change: Change) -> str:
    prop = _last_step(change.path)
    if prop in ("build", "members") and change.after is True:
        return f"role_power_changed/{prop}_on"
    if prop in ("build", "members") and change.before is True and change.after in (False, None):
        return f"role_power_changed/{prop}_off"
    return "role_power_changed"


ACCESS_VARIANTS: dict[str, Callable[[Change], str]] = {
    "role_removed": lambda c: "role_removed/built_in" if _role_key(c) in BUILT_IN_ROLES else "role_removed",
    "grant_changed": _grant_variant,
    "field_access_changed": lambda c: "field_access_changed/unset" if c.after is None else "field_access_changed",
    "role_power_changed": _power_variant,
}


def _role_key(change: Change) -> str:
    return change.subject.removeprefix("role ").split(".", 1)[0]


def _access_params(change: Change, zh: bool, locale: str) -> dict[str, str]:
    key = _role_key(change)
    out = {"role": _quote(_text(change.label, locale) or key, zh), "rkey": key}
    entity, name = _pair(change)
    if change.code == "grant_changed":
        records = ("其他实体的记录" if zh else "records of any other entity") if entity == "*" \
            else (f"“{entity}”记录" if zh else f'"{entity}" records')
        action = ACTION_WORDS.get(name, (name, name))[zh]
        out.update(records=records, action=action, grant=_grant_phrase(change, action, records, zh),
                   was=_was(change, entity, name, zh))
    elif change.code == "field_access_changed":
        rule = FIELD_RULE_WORDS.get(change.after) if isinstance(change.after, str) else None
        out.update(field=_quote(name, zh), entity=_quote(entity, zh),
                   rule=rule[zh] if rule else _value(change.after, zh, locale))
    return out


def _grant_phrase(change: Change, action: str, records: str, zh: bool) -> str:
    """``read all "customer" records``: the action and, for a scoped grant, whose records."""
    scope = _scope(change.after)
    whose = SCOPE_WORDS[scope][zh] if scope and _pair(change)[1] in SCOPED_ACTIONS else ""
    when = isinstance(change.after, dict) and "when" in change.after
    if zh:
        return f"{action}{whose}{records}" + ("（限满足条件的）" if when else "")
    return f"{action} {whose + ' ' if whose else ''}{records}" + (" that meet a condition" if when else "")


def _was(change: Change, entity: str, action: str, zh: bool) -> str:
    """`` (before: their own)`` for scoped actions, where the old scope is worth saying."""
    if action not in SCOPED_ACTIONS or not (change.before is None or _is_grant(change.before)):
        return ""
    value = change.before
    if value is None:
        word = ("无" if zh else "none") if entity == "*" else ("同其他实体" if zh else "as for any other entity")
    elif value is False:
        word = "无" if zh else "none"
    else:
        word = SCOPE_WORDS[_scope(value)][zh]
        if isinstance(value, dict) and "when" in value:
            word += "（附加条件）" if zh else " with a condition"
    return f"（之前：{word}）" if zh else f" (before: {word})"


def _moved_words(before: str, after: str, zh: bool) -> str:
    if before != after:
        return f"由第 {before} 位移到第 {after} 位" if zh else f"from position {before} to {after}"
    return f"调整了相对顺序（仍在第 {after} 位）" if zh else f"among the others (still at position {after})"


def _what(change: Change, name: str, zh: bool, locale: str) -> str:
    table = _quote(_text(change.owner, locale) or change.subject.split(".")[0], zh)
    return f"子表单{table}的列{name}" if zh else f"Column {name} of sub-table {table}"


def _text(label: Any, locale: str) -> str:
    if isinstance(label, str):
        return label
    if isinstance(label, dict):
        return text_of({k: v for k, v in label.items() if isinstance(v, str)}, locale)
    return ""


def _quote(text: str, zh: bool) -> str:
    return f"“{text}”" if zh else f'"{text}"'


def _identity(change: Change) -> str:
    subject = change.subject.removeprefix("stage ")
    if change.code in WITH_PROPERTY and "." in subject:
        subject = subject.rsplit(".", 1)[0]
    return subject.rsplit(".", 1)[-1] or change.subject


def _parent(change: Change) -> str:
    subject = change.subject.removeprefix("stage ")
    if change.code in WITH_PROPERTY:
        subject = subject.rsplit(".", 1)[0]
    return subject.rsplit(".", 1)[0].rsplit(".", 1)[-1]


def _stage_key(change: Change) -> str:
    return change.subject.removeprefix("stage ").split(".", 1)[0]


def _gate_words(subject: str, zh: bool) -> str:
    detail = subject.split(".", 1)[1] if "." in subject else subject
    return GATE_WORDS.get(detail, (detail, detail))[zh]


def _last_step(path: str) -> str:
    found = re.search(r"(?:\.(\w+)|\['(.*)'\])$", path)
    return (found.group(1) or found.group(2)) if found else path


def _index(path: str) -> int:
    found = re.search(r"\[(\d+)\]$", path)
    return int(found.group(1)) if found else 0


def _holder(change: Change, zh: bool, locale: str, column: bool) -> str:
    """The field, column or stage an option or checklist item belongs to."""
    owner = _quote(_text(change.owner, locale) or _parent(change), zh)
    if change.code.startswith("checklist_item"):
        return f"阶段{owner}" if zh else f"stage {owner}"
    if column:
        return f"列{owner}" if zh else f"column {owner}"
    return f"字段{owner}" if zh else f"field {owner}"


def _section(change: Change, zh: bool, locale: str) -> str:
    found = re.search(r"\.sections\[(\d+)\]", change.path)
    number = int(found.group(1)) + 1 if found else 1
    label = change.owner if change.code.startswith("form_") else change.label
    text = _text(label, locale)
    named = f" {_quote(text, zh)}" if text else ""
    return f"第 {number} 个分组{named.strip()}" if zh else f"section {number}{named}"


def _verb(change: Change) -> str:
    return "added" if change.before is None else "removed" if change.after is None else "changed"


def _type_word(change: Change, item: Any, zh: bool, locale: str) -> str:
    name = _get(item, "type")
    if change.code.startswith("action_"):
        return str(name) if isinstance(name, str) else "?"
    return _type_label(name, zh, locale)


def _type_label(name: Any, zh: bool, locale: str) -> str:
    if isinstance(name, str) and name in FIELD_TYPES:
        return text_of(FIELD_TYPES[name].label, locale)
    return _value(name, zh, locale)


def _format(change: Change, value: Any, zh: bool, locale: str) -> str:
    code = change.code
    if code in LABEL_CODES:
        return _quote(_text(value, locale), zh) if _text(value, locale) else _value(value, zh, locale)
    if code == "field_type_changed":
        return _type_label(value, zh, locale)
    if code in POSITION_CODES:
        position = value.get("position") if isinstance(value, dict) else value
        return str(position + 1) if isinstance(position, int) else _value(value, zh, locale)
    if code == "stage_probability_changed" and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value}%"
    if code == "form_text_changed" and isinstance(value, dict) and "text" in value:
        return _value(value["text"], zh, locale)
    if code in ("trigger_changed", "action_changed") and isinstance(_get(value, "type"), str):
        return _quote(value["type"], zh)
    return _value(value, zh, locale)


def _value(value: Any, zh: bool, locale: str) -> str:
    """A value for a sentence: text (or a map of languages) in quotes, anything else as short JSON."""
    if value is None:
        return "（未设置）" if zh else "(not set)"
    if isinstance(value, str) or (isinstance(value, dict) and value and set(value) <= set(LOCALES)
                                  and all(isinstance(v, str) for v in value.values())):
        return _quote(_shorten(_text(value, locale)), zh)
    return _shorten(json.dumps(value, ensure_ascii=False, default=str))


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
