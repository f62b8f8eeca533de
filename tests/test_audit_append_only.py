"""Audit rows are append-only in the database itself: triggers refuse UPDATE and DELETE,
from raw SQL and from the ORM alike (run on SQLite and on PostgreSQL)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from analysis import audit
from analysis.models import AuditEvent

pytestmark = pytest.mark.django_db
A = AuditEvent.Action


@pytest.fixture
def event(people):
    return audit.record(A.CASE_EDITED, actor=people.alice, case=people.case, details={"x": 1})


def raw(sql: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE analysis_auditevent SET action = 'case.closed' WHERE seq = 1",
        "UPDATE analysis_auditevent SET details = '{}'",
        "DELETE FROM analysis_auditevent WHERE seq = 1",
        "DELETE FROM analysis_auditevent",
    ],
)
def test_it_refuses_raw_sql_that_changes_a_row(event, people, sql):
    with pytest.raises(IntegrityError, match="append-only"):
        raw(sql)
    stored = AuditEvent.objects.get()
    assert (stored.action, stored.details, stored.hash) == (event.action, {"x": 1}, event.hash)
    assert audit.verify(people.case).ok


def test_it_refuses_orm_updates_and_deletes(event):
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(target_id="forged")
    with pytest.raises(IntegrityError), transaction.atomic():
        event.delete()
    assert AuditEvent.objects.filter(pk=event.pk, target_id="").exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no TRUNCATE")
def test_it_refuses_truncate(event):
    # Check the deferred foreign keys first, or PostgreSQL refuses the TRUNCATE on its own
    # ("pending trigger events") before our trigger has a say.
    raw("SET CONSTRAINTS ALL IMMEDIATE")
    with pytest.raises(IntegrityError, match="append-only"):
        raw("TRUNCATE analysis_auditevent CASCADE")
    assert AuditEvent.objects.exists()


def test_it_still_appends(event, people):
    assert audit.record(A.CASE_CLOSED, case=people.case).seq == 2
