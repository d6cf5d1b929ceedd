"""Records through the service layer: validation, change log, optimistic locking, soft delete."""
from __future__ import annotations

import pytest

from formloom.platform.auth import Cause
from formloom.platform.db import new_session
from formloom.platform.errors import Forbidden, NotFound, RecordValidationError, VersionConflict
from formloom.platform.models import Record
from formloom.runtime import catalog, listing, records


def create_deal(db, user, sales, **values):
    record = records.create(db, user, Cause.for_user(user), sales, "deal", {"name": "Deal", **values})
    db.commit()
    return record


def test_values_are_coerced_to_exact_stored_values(db, admin, sales):
    record = create_deal(db, admin, sales, amount="1,234.5", discount=12.5, seats="7", strategic="on",
                         close_date="2026-02-28", meeting_at="2026-03-01T09:30", products=["crm", "bi"])
    assert record.data == {"name": "Deal", "amount": "1234.50", "discount": "12.5", "seats": 7, "stage": "lead",
                           "strategic": True, "close_date": "2026-02-28", "meeting_at": "2026-03-01T09:30:00Z",
                           "products": ["crm", "bi"]}


@pytest.mark.parametrize("values, key, message", [
    ({"close_date": "2026-02-30"}, "close_date", "Expected close must be a date like 2026-03-31, got '2026-02-30'."),
    ({"close_date": "not-a-date"}, "close_date", "Expected close must be a date like 2026-03-31, got 'not-a-date'."),
    ({"website": "javascript:alert(1)"}, "website", "Website must be a web address starting with http:// or https://, got 'javascript:alert(1)'."),
    ({"amount": "0.1.2"}, "amount", "Amount must be an amount of money, got '0.1.2'."),
    ({"amount": "-5"}, "amount", "Amount must be at least 0."),
    ({"discount": "100.1"}, "discount", "Discount must be at most 100."),
    ({"seats": "0"}, "seats", "Seats must be at least 1."),
    ({"seats": 1.5}, "seats", "Seats must be a whole number, got 1.5."),
    ({"stage": "lost"}, "stage", "Stage must be one of: Lead, Proposal, Won; got 'lost'."),
    ({"products": ["crm", "crm"]}, "products", "Products must not repeat a choice."),
    ({"contact_phone": "call me"}, "contact_phone", "Contact phone must be a phone number of digits, spaces and dashes, with an optional leading +, got 'call me'."),
    ({"owner": 999}, "owner", "Owner must be an active member; #999 is not one."),
    ({"company": 999}, "company", "Company must be a record you can see; #999 is not one."),
    ({"name": "x" * 41}, "name", "Deal name must be at most 40 characters long."),
    ({"name": "   "}, "name", "Deal name is required."),
])
def test_bad_value_gets_a_message_naming_the_field(db, admin, sales, values, key, message):
    with pytest.raises(RecordValidationError) as raised:
        records.create(db, admin, Cause.for_user(admin), sales, "deal", {"name": "Deal", **values})
    assert raised.value.fields == {key: [message]}


def test_all_problems_are_reported_at_once(db, admin, sales):
    with pytest.raises(RecordValidationError) as raised:
        records.create(db, admin, Cause.for_user(admin), sales, "deal",
                       {"seats": "many", "amount": "-1", "contact_email": "nope", "bogus": 1})
    assert list(raised.value.fields) == ["bogus", "name", "seats", "amount", "contact_email"]


def test_every_change_is_logged_with_diff_and_cause(db, admin, sales):
    record = create_deal(db, admin, sales, amount="100")
    records.update(db, admin, Cause.for_cli(admin, "import"), sales, record, {"amount": "250", "seats": 3}, 1)
    records.delete(db, admin, Cause.for_user(admin), sales, record)
    records.restore(db, admin, Cause.for_user(admin), sales, record)
    db.commit()
    log = list(reversed(records.history(db, admin, sales, record)))
    assert [(c.action, c.cause_kind) for c in log] == [("create", "user"), ("update", "cli"),
                                                       ("delete", "user"), ("restore", "user")]
    assert log[0].diff == {"name": [None, "Deal"], "amount": [None, "100.00"], "stage": [None, "lead"]}
    assert log[1].diff == {"amount": ["100.00", "250.00"], "seats": [None, 3]}
    assert log[1].cause_ref == "import" and log[1].actor_id == admin.id


def test_stale_version_gets_conflict_naming_what_changed(db, admin, sales):
    record = create_deal(db, admin, sales, amount="100")
    records.update(db, admin, Cause.for_user(admin), sales, record, {"amount": "200"}, 1)
    db.commit()
    with pytest.raises(VersionConflict) as raised:
        records.update(db, admin, Cause.for_user(admin), sales, record, {"amount": "300"}, 1)
    assert raised.value.current_version == 2
    assert raised.value.changed_fields == {"amount": ["100.00", "200.00"]}
    assert records.get(db, admin, sales, "deal", record.id).data["amount"] == "200.00"


def test_two_sessions_racing_on_one_version_one_wins_and_nothing_is_lost(app, db, admin, sales):
    record = create_deal(db, admin, sales, amount="100", seats=1)
    first, second = new_session(app), new_session(app)
    try:
        mine = first.get(Record, record.id)
        theirs = second.get(Record, record.id)  # both have read version 1
        records.update(first, admin, Cause.for_user(admin), sales, mine, {"amount": "111"}, 1)
        first.commit()
        # The second writer passed the version check on its stale copy; the UPDATE itself refuses.
        with pytest.raises(VersionConflict) as raised:
            records.update(second, admin, Cause.for_user(admin), sales, theirs, {"seats": 9}, 1)
        assert raised.value.changed_fields == {"amount": ["100.00", "111.00"]}
    finally:
        first.close(), second.close()
    db.expire_all()
    stored = db.get(Record, record.id)
    assert stored.version == 2 and stored.data["amount"] == "111.00" and stored.data["seats"] == 1


def test_soft_deleted_record_leaves_lists_and_keeps_values(db, admin, sales):
    record = create_deal(db, admin, sales, amount="5")
    records.delete(db, admin, Cause.for_user(admin), sales, record)
    db.commit()
    entity = catalog.entity(db, sales, "deal")
    assert listing.list_records(db, admin, sales, entity, listing.ListQuery()).total == 0
    with pytest.raises(NotFound):
        records.get(db, admin, sales, "deal", record.id)
    deleted = listing.list_records(db, admin, sales, entity, listing.ListQuery(deleted=True))
    assert [r.id for r in deleted.records] == [record.id]
    records.restore(db, admin, Cause.for_user(admin), sales, record)
    assert records.get(db, admin, sales, "deal", record.id).data["amount"] == "5.00"


def test_relation_to_deleted_record_is_refused(db, admin, sales):
    company = records.create(db, admin, Cause.for_user(admin), sales, "company", {"name": "Acme"})
    records.delete(db, admin, Cause.for_user(admin), sales, company)
    with pytest.raises(RecordValidationError) as raised:
        create_deal(db, admin, sales, company=company.id)
    assert "company" in raised.value.fields


def test_member_without_access_is_forbidden_in_services(db, admin, sales, outsider):
    record = create_deal(db, admin, sales)
    with pytest.raises(Forbidden):
        records.create(db, outsider, Cause.for_user(outsider), sales, "deal", {"name": "x"})
    with pytest.raises(Forbidden):
        records.get(db, outsider, sales, "deal", record.id)


def test_list_filters_sorts_and_pages_with_cursor(db, admin, sales):
    for i, (stage, amount, close) in enumerate([("lead", "10", "2026-01-31"), ("won", "9.5", "2026-02-28"),
                                                ("won", "100", "2026-03-01"), ("proposal", None, None),
                                                ("won", "20", "2026-02-01")]):
        create_deal(db, admin, sales, name=f"Deal {i}", stage=stage,
                    **({"amount": amount} if amount else {}), **({"close_date": close} if close else {}))
    entity = catalog.entity(db, sales, "deal")

    def names(**query):
        return [r.data["name"] for r in listing.list_records(db, admin, sales, entity, listing.ListQuery(**query)).records]

    assert names(sort="amount") == ["Deal 1", "Deal 0", "Deal 4", "Deal 2", "Deal 3"]  # numeric, empty last
    assert names(sort="-amount") == ["Deal 2", "Deal 4", "Deal 0", "Deal 1", "Deal 3"]
    won = listing.parse_filters({"f.stage": "won", "f.close_date.gte": "2026-02-01"}, entity)
    assert names(filters=won, sort="close_date") == ["Deal 4", "Deal 1", "Deal 2"]
    assert names(search="deal 3") == ["Deal 3"]

    seen, cursor = [], None
    while True:
        page = listing.list_records(db, admin, sales, entity, listing.ListQuery(sort="-amount", limit=2, cursor=cursor))
        seen += [r.data["name"] for r in page.records]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["Deal 2", "Deal 4", "Deal 0", "Deal 1", "Deal 3"]


def test_filter_on_unknown_field_or_operator_is_a_clear_error(db, admin, sales):
    entity = catalog.entity(db, sales, "deal")
    with pytest.raises(listing.ListError, match="deal has no such field"):
        listing.parse_filters({"f.colour": "red"}, entity)
    with pytest.raises(listing.ListError, match="cannot be filtered with 'gte'; it supports: eq, in"):
        listing.parse_filters({"f.stage.gte": "won"}, entity)
