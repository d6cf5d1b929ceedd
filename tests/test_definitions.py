"""Definitions: checks with every problem at its path, publishing, versions, removed fields."""
from __future__ import annotations

import pytest

from formloom.builder import definitions
from formloom.platform.auth import Cause
from formloom.platform.errors import DefinitionError, RecordValidationError
from formloom.runtime import catalog, records
from tests.factories import deal_body

THREE_MISTAKES = {
    "formloom": 1, "kind": "entity", "key": "deal", "label": "Deal", "title_field": "name",
    "fields": [
        {"key": "name", "type": "text", "label": "Name", "minLenght": 3},          # misspelt option
        {"key": "amount", "type": "money", "label": "Amount"},                     # unknown type
        {"key": "stage", "type": "select", "label": "Stage",
         "options": [{"value": "a", "label": "A"}, {"value": "a", "label": "B"}]},  # duplicate option
    ],
}


def test_three_mistakes_give_three_problems_with_paths(db, sales):
    problems = definitions.check(db, sales, "entity", "deal", THREE_MISTAKES)
    assert [(p.path, p.message) for p in problems] == [
        ("$.fields[0].minLenght", "Unknown property 'minLenght'; remove it or check its spelling."),
        ("$.fields[1].type", "'money' is not a field type; use one of: text, textarea, integer, decimal, "
                             "currency, percent, date, datetime, boolean, select, multiselect, email, "
                             "phone, url, user, relation, rating, time, duration, tags, address, geolocation, "
                             "file, image, signature, serial, formula, lookup, users, relations, table."),
        ("$.fields[2].options[1].value", "Option value 'a' appears twice in field 'stage'."),
    ]


def test_draft_with_problems_is_kept_but_not_published(db, admin, sales):
    _, problems = definitions.save_draft(db, admin, sales, "entity", "deal", THREE_MISTAKES)
    assert len(problems) == 3
    with pytest.raises(DefinitionError) as raised:
        definitions.publish(db, admin, sales, "entity", "deal")
    assert len(raised.value.problems) == 3
    assert definitions.get(db, sales, "entity", "deal").draft == THREE_MISTAKES
    assert catalog.entity(db, sales, "deal").version == 1  # the published version is untouched


@pytest.mark.parametrize("mutate, path, fragment", [
    (lambda b: b.update(key="Deal X"), "$.key", "not a valid key"),
    (lambda b: b.pop("label"), "$.label", "Property 'label' is required."),
    (lambda b: b.update(title_field="nope"), "$.title_field", "not a field of this entity"),
    (lambda b: b["fields"].append({"key": "name", "type": "text", "label": "Again"}), "$.fields[16].key", "used twice"),
    (lambda b: b["fields"][15].update(target="planet"), "$.fields[15].target", "does not have"),
    (lambda b: b["fields"][2].update(min=10, max=1), "$.fields[2].min", "above max"),
    (lambda b: b["fields"][9].update(default="lost"), "$.fields[9].default", "not a valid select value"),
    (lambda b: b["fields"][0].update(label={"fr": "Nom"}), "$.fields[0].label", "map of languages"),
    (lambda b: b["fields"][4].update(currency="yuan"), "$.fields[4].currency", "does not match"),
])
def test_each_kind_of_mistake_is_reported_at_its_path(db, sales, mutate, path, fragment):
    body = deal_body()
    mutate(body)
    problems = definitions.check(db, sales, "entity", body["key"] if body["key"] == "deal" else "deal", body)
    assert any(p.path == path and fragment in p.message for p in problems), problems


def test_entity_with_sixteen_field_types_publishes(db, admin, sales):
    version = catalog.entity(db, sales, "deal")
    assert len(version.fields) == 16
    assert {f.type.name for f in version.fields} >= {"text", "currency", "relation", "user", "multiselect"}


def test_form_naming_missing_field_or_leaving_out_required_one_is_refused(db, admin, sales):
    form = {"formloom": 1, "kind": "form", "key": "deal_quick", "label": "Quick deal", "entity": "deal",
            "sections": [{"label": "Main", "fields": ["amount", "ghost"]}]}
    problems = definitions.check(db, sales, "form", "deal_quick", form)
    assert [(p.path, p.message) for p in problems] == [
        ("$.sections[0].fields[1]", "Entity 'deal' has no field 'ghost'."),
        ("$.sections", "Field 'name' is required by entity 'deal' but is not on this form; add it to a section."),
    ]


def test_field_type_cannot_change_once_published(db, admin, sales):
    body = deal_body()
    body["fields"][2]["type"] = "text"
    body["fields"][2].pop("min"), body["fields"][2].pop("max")
    problems = definitions.check(db, sales, "entity", "deal", body)
    assert [p.path for p in problems] == ["$.fields[2].type"]


def test_republish_keeps_values_of_removed_field_and_validates_new_records_against_new_version(db, admin, sales):
    old = records.create(db, admin, Cause.for_user(admin), sales, "deal",
                         {"name": "Old deal", "seats": "12", "website": "https://old.example.com"})
    db.commit()
    body = deal_body()
    body["fields"] = [f for f in body["fields"] if f["key"] != "seats"]
    body["fields"].append({"key": "region", "type": "select", "label": "Region", "required": True,
                           "options": [{"value": "east", "label": "East"}]})
    definitions.save_and_publish(db, admin, sales, body)
    db.commit()

    stored = records.get(db, admin, sales, "deal", old.id)
    assert stored.data["seats"] == 12 and stored.entity_version == 1

    with pytest.raises(RecordValidationError) as raised:
        records.create(db, admin, Cause.for_user(admin), sales, "deal", {"name": "New", "seats": 3})
    assert raised.value.fields == {
        "seats": ["'seats' is not a field of Deal; remove it or use one of: " + ", ".join(
            f["key"] for f in body["fields"]) + "."],
        "region": ["Region is required."],
    }
    new = records.create(db, admin, Cause.for_user(admin), sales, "deal", {"name": "New", "region": "east"})
    assert new.entity_version == 2

    # Editing the old record under the new version keeps the removed field's value.
    records.update(db, admin, Cause.for_user(admin), sales, stored, {"region": "east", "name": "Old deal 2"},
                   stored.version)
    db.commit()
    assert stored.data["seats"] == 12 and stored.data["region"] == "east" and stored.entity_version == 2


def test_publishing_unchanged_draft_makes_no_new_version(db, admin, sales):
    definitions.save_draft(db, admin, sales, "entity", "deal", deal_body())
    version = definitions.publish(db, admin, sales, "entity", "deal")
    assert version.version == 1
    assert [v.version for v in definitions.versions(db, definitions.get(db, sales, "entity", "deal"))] == [1]
