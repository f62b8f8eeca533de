"""Audit exports: CSV and JSON with every hashed field, recorded as events themselves, and
enough for an outside verifier to recompute each hash with nothing but the export."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest
from django.urls import reverse

from analysis import audit
from analysis.models import AuditEvent

pytestmark = pytest.mark.django_db
A = AuditEvent.Action


@pytest.fixture
def trail(people):
    audit.record(A.CASE_EDITED, actor=people.alice, case=people.case, details={"title": "T"})
    audit.record(
        A.MEMBER_ADDED, actor=people.alice, case=people.case, target=("membership", 3),
        details={"user": "=HYPERLINK(\"http://evil\")", "role": "viewer"},
    )  # fmt: skip
    audit.record(A.CASE_CLOSED, actor=people.bob, case=people.case)
    return people.case


def export(client, user, case, fmt, **query):
    client.force_login(user)
    return client.get(reverse(f"case-audit-{fmt}", args=[case.id]), query)


def sha(value) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def test_the_json_export_lets_an_outsider_verify_the_chain(client, people, trail):
    response = export(client, people.alice, trail, "json")
    assert response["Content-Type"] == "application/json"
    document = json.loads(response.content)
    assert document["chain"] == f"case:{trail.id}" and document["hash_version"] == 1
    prev = "0" * 64
    for event in document["events"]:  # the recipe, re-implemented from the docs
        body = {k: event[k] for k in ("ip", "user_agent", "details")}
        assert sha(body) == event["body_hash"]
        header = {
            k: event[k]
            for k in ("chain", "seq", "id", "case", "actor", "action", "target_type",
                      "target_id", "created_at", "body_hash", "prev_hash")
        }  # fmt: skip
        assert event["prev_hash"] == prev
        assert sha({"v": 1, **header}) == event["hash"]
        prev = event["hash"]
    assert [e["seq"] for e in document["events"]] == [1, 2, 3, 4]


def test_an_export_is_recorded_and_contains_its_own_record(client, people, trail):
    document = json.loads(export(client, people.alice, trail, "json").content)
    last = document["events"][-1]
    assert last["action"] == A.AUDIT_EXPORTED and last["actor_username"] == "alice"
    assert (last["target_type"], last["target_id"]) == ("audit_chain", f"case:{trail.id}")
    assert last["details"] == {"format": "json", "filters": {}}
    assert document["export_event"] == {"seq": last["seq"], "hash": last["hash"]}
    assert audit.verify(trail).ok


def test_the_csv_export_has_every_field_and_defuses_formulas(client, people, trail):
    response = export(client, people.alice, trail, "csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["seq"] for r in rows] == ["1", "2", "3", "4"]
    stored = {e.seq: e for e in AuditEvent.objects.filter(case=trail)}
    for row in rows:
        event = stored[int(row["seq"])]
        assert (row["hash"], row["prev_hash"], row["id"]) == (
            event.hash, event.prev_hash, str(event.id),
        )  # fmt: skip
    assert rows[1]["target_id"] == "3" and rows[1]["actor_username"] == "alice"
    details = json.loads(rows[1]["details"])
    assert details["user"] == '=HYPERLINK("http://evil")'  # inside JSON: inert
    assert rows[3]["action"] == A.AUDIT_EXPORTED


def test_a_csv_cell_that_starts_like_a_formula_gets_an_apostrophe(client, people):
    audit.record(A.CASE_EDITED, case=people.case, target=("note", "=1+1"))
    rows = list(csv.DictReader(io.StringIO(export(client, people.alice, people.case, "csv")
                                           .content.decode())))  # fmt: skip
    assert rows[0]["target_id"] == "'=1+1"


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_exports_are_attachments_with_a_safe_name(client, people, trail, fmt):
    response = export(client, people.alice, trail, fmt)
    disposition = response["Content-Disposition"]
    assert disposition.startswith(f'attachment; filename="audit-case-{trail.id}-')
    assert disposition.endswith(f'.{fmt}"')
    assert response["Cache-Control"] == "private, no-store"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_an_export_follows_the_page_filters(client, people, trail):
    document = json.loads(export(client, people.alice, trail, "json", actor="bob").content)
    assert [e["action"] for e in document["events"]] == [A.CASE_CLOSED]
    assert document["filters"] == {"actor": "bob"}


def test_the_global_export_is_for_auditors(client, people):
    audit.record(A.SIGN_IN, actor=people.bob)
    client.force_login(people.alice)
    assert client.get(reverse("audit-global-csv")).status_code == 404
    client.force_login(people.admin)
    response = client.get(reverse("audit-global-json"))
    document = json.loads(response.content)
    assert [e["action"] for e in document["events"]] == [A.SIGN_IN, A.AUDIT_EXPORTED]
    assert 'filename="audit-global-' in response["Content-Disposition"]
