"""CSV imports go through the same checks as a form or the API: stage gates included, all or nothing."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from formloom.platform import auth
from formloom.platform.auth import Cause
from formloom.platform.errors import Forbidden
from formloom.platform.models import ChangeLog, Record, StageVisit
from formloom.runtime import imports, records
from tests.test_cli import formloom


@pytest.fixture
def pipes(db, pipes, rep):
    """The pipeline app, where the rep is a manager: reps may not import (docs/access.md)."""
    auth.grant_app(db, rep, pipes, "manager")
    db.commit()
    return pipes


def test_a_rep_may_not_import(db, admin):
    from tests.factories import make_pipeline_app, make_user

    app = make_pipeline_app(db, admin, key="noimport")
    rep = make_user(db, "plainrep")
    auth.grant_app(db, rep, app)
    with pytest.raises(Forbidden, match="may not import deal records"):
        imports.import_rows(db, rep, app, "deal", imports.read_csv("name\nA\n"))


def company(db, rep, app, name="Acme"):
    record = records.create(db, rep, Cause.for_user(rep), app, "company", {"name": name})
    db.commit()
    return record


def deals(db, app) -> list[Record]:
    return list(db.scalars(select(Record).where(Record.app_id == app.id, Record.entity_key == "deal")
                           .order_by(Record.id)))


def test_an_import_that_breaks_a_gate_names_every_missing_item_and_imports_nothing(db, rep, pipes):
    acme = company(db, rep, pipes)
    rows = imports.read_csv(f"name,company,amount,stage\nFine,{acme.id},100,proposal\nBare,,,proposal\n"
                            "Lost cause,,,lost\n")
    report = imports.import_rows(db, rep, pipes, "deal", rows)
    db.commit()
    assert not report.ok and report.created == 0
    by_line = {p.line: p.fields for p in report.problems}
    assert set(by_line) == {3, 4}
    assert by_line[3] == {"amount": ["Fill Amount to enter Proposal."], "company": ["Fill Customer to enter Proposal."]}
    assert by_line[4] == {"lost_reason": ["Fill Lost reason to enter Lost."]}
    assert deals(db, pipes) == []  # the good row was not kept either


def test_an_import_that_meets_the_gates_creates_records_with_their_first_stage_visit(db, rep, pipes):
    acme = company(db, rep, pipes)
    rows = imports.read_csv(f"Deal name,Customer,Amount,Stage\nFine,{acme.id},100,proposal\nEarly,,,lead\n")
    report = imports.import_rows(db, rep, pipes, "deal", rows)
    db.commit()
    assert report.ok and report.created == 2
    created = deals(db, pipes)
    assert [(d.title, d.data["stage"]) for d in created] == [("Fine", "proposal"), ("Early", "lead")]
    assert [v.stage for v in db.scalars(select(StageVisit).order_by(StageVisit.id))] == ["proposal", "lead"]
    causes = {c.cause_ref for c in db.scalars(select(ChangeLog).where(ChangeLog.record_id == created[0].id))}
    assert causes == {f"import:{report.batch}"}


def test_an_import_updating_the_stage_by_match_key_passes_the_transition_rules(db, rep, pipes):
    records.create(db, rep, Cause.for_user(rep), pipes, "deal", {"name": "Known"})
    db.commit()
    report = imports.import_rows(db, rep, pipes, "deal", imports.read_csv("name,stage\nKnown,won\n"), match="name")
    assert [p.fields for p in report.problems] == [
        {"stage": ["It cannot move from Lead to Won; it can move to: Qualified, Proposal and Lost."]}]
    db.rollback()
    report = imports.import_rows(db, rep, pipes, "deal", imports.read_csv("name,stage\nKnown,qualified\n"),
                                 match="name")
    db.commit()
    assert report.ok and report.updated == 1 and report.created == 0
    assert deals(db, pipes)[0].data["stage"] == "qualified"


def test_unknown_columns_are_ignored_and_the_batch_names_them(db, rep, pipes):
    table = imports.read_csv("name,colour\nA,red\n")
    batch = imports.start(db, rep, pipes, "deal", table, imports.ImportOptions(), dry_run=True)
    assert batch.options["ignored"] == ["colour"] and batch.options["mapping"] == {"name": "name"}


def test_cli_import_reports_each_failing_line_and_leaves_the_database_unchanged(tmp_path, database_url):
    instance = tmp_path / "cli"
    url = database_url
    assert formloom(instance, "init", database_url=url).returncode == 0
    assert formloom(instance, "user", "create", "boss", "--admin", "--generate", database_url=url).returncode == 0
    assert formloom(instance, "template", "install", "crm", database_url=url).returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("Opportunity name,Stage\nNo customer yet,proposal\n", encoding="utf-8-sig")
    result = formloom(instance, "import", "crm", "opportunity", str(bad), "--all-or-nothing", database_url=url)
    assert result.returncode == 1
    assert "Nothing was imported: 1 row(s) have problems." in result.stderr
    assert "line 2 customer: Customer is required." in result.stderr


def test_cli_import_of_valid_rows_creates_them(db, admin, tmp_path, database_url, pipes):
    good = tmp_path / "deals.csv"
    good.write_text("name,amount\nOne,10\nTwo,20\n", encoding="utf-8")
    instance = tmp_path / "cli"
    result = formloom(instance, "import", "pipes", "deal", str(good), database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "Imported 2 new and 0 updated deal record(s) (batch 1); 0 skipped, 0 with problems." in result.stdout
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Record).where(Record.entity_key == "deal")) == 2
