"""audit.record(): one chain per case plus a global one, linked by hashes, written with the
action's own transaction, and stable across the database's round trip."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime

import pytest
from django.db import transaction
from django.test import RequestFactory

from analysis import audit
from analysis.audit_hash import event_hash
from analysis.models import AuditEvent, Case

pytestmark = pytest.mark.django_db
A = AuditEvent.Action


def test_it_starts_each_chain_at_genesis_and_links_the_next_event(people):
    first = audit.record(A.CASE_EDITED, actor=people.alice, case=people.case)
    second = audit.record(A.CASE_CLOSED, actor=people.alice, case=people.case)
    assert (first.seq, first.prev_hash) == (1, "0" * 64)
    assert (second.seq, second.prev_hash) == (2, first.hash)


def test_it_keeps_one_chain_per_case_and_one_global_chain(people):
    other = Case.create_with_owner(user=people.bob, title="Other")
    audit.record(A.CASE_EDITED, case=people.case)
    audit.record(A.CASE_EDITED, case=people.case)
    on_other = audit.record(A.CASE_EDITED, case=other)
    on_global = audit.record(A.SIGN_IN, actor=people.bob)
    assert (on_other.seq, on_other.chain_key) == (1, f"case:{other.id}")
    assert (on_global.seq, on_global.chain_key, on_global.case) == (1, "global", None)
    assert all(audit.verify(c).ok for c in (people.case, other, None))


def test_it_hashes_the_documented_recipe(people):
    """An external verifier recomputes this from a JSON export: the recipe must not drift."""
    event = audit.record(
        A.MEMBER_ADDED,
        actor=people.alice,
        case=people.case,
        target=("membership", 7),
        details={"role": "viewer"},
    )
    event.refresh_from_db()

    def sha(value) -> str:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode()).hexdigest()

    body = sha({"ip": None, "user_agent": "", "details": {"role": "viewer"}})
    header = {
        "v": 1, "chain": f"case:{people.case.id}", "seq": 1, "id": str(event.id),
        "case": str(people.case.id), "actor": str(people.alice.id), "action": "member.added",
        "target_type": "membership", "target_id": "7",
        "created_at": event.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "body_hash": body, "prev_hash": "0" * 64,
    }  # fmt: skip
    assert event.hash == sha(header)


def test_it_rolls_back_with_the_action_it_records(people):
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record(A.CASE_EDITED, actor=people.alice, case=people.case)
        raise RuntimeError("the edit failed after all")
    assert not AuditEvent.objects.exists()
    assert audit.record(A.CASE_EDITED, case=people.case).seq == 1


def test_it_refuses_an_unknown_action(people):
    with pytest.raises(ValueError):
        audit.record("case.teleported", case=people.case)


def test_it_takes_the_actor_ip_and_user_agent_from_the_request(people):
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.7", HTTP_USER_AGENT="x" * 500)
    request.user = people.carol
    event = audit.record(A.ANALYSIS_VIEWED, case=people.case, request=request)
    assert (event.actor, event.ip) == (people.carol, "192.0.2.7")
    assert event.user_agent == "x" * 300


@pytest.mark.parametrize(
    "remote, forwarded, trusted, expected",
    [
        ("192.0.2.7", "", [], "192.0.2.7"),
        ("192.0.2.7", "203.0.113.9", [], "192.0.2.7"),  # not our proxy: header ignored
        ("10.0.0.2", "198.51.100.1, 203.0.113.9", ["10.0.0.2"], "203.0.113.9"),
        ("10.0.0.2", "203.0.113.9, 10.0.0.3", ["10.0.0.2", "10.0.0.3"], "203.0.113.9"),
        ("10.0.0.2", "", ["10.0.0.2"], "10.0.0.2"),
        ("not an address", "", [], None),
    ],
)
def test_it_believes_x_forwarded_for_only_from_trusted_proxies(
    people, settings, remote, forwarded, trusted, expected
):
    settings.AUDIT_TRUSTED_PROXIES = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert audit.client_of(request)[0] == expected


@pytest.mark.parametrize("address", ["::ffff:192.0.2.1", "2001:DB8:0:0:1:0:0:1", "::1"])
def test_it_verifies_whatever_way_the_database_prints_an_address(people, address):
    request = RequestFactory().get("/", REMOTE_ADDR=address)
    audit.record(A.SIGN_IN_FAILED, request=request)
    assert audit.verify().ok


def test_it_stores_details_exactly_as_it_hashed_them(people):
    odd = {
        "when": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        "id": uuid.UUID(int=1),
        "big": 1e16,
        "third": 1 / 3,
        "nul": "a\x00b",
        "nested": [{"z": 1, "a": [2.0, None, True]}],
    }
    event = audit.record(A.CASE_EDITED, case=people.case, details=odd)
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.details == event.details
    assert stored.details["big"] == 10**16 and stored.details["nul"] == "a\ufffdb"
    assert event_hash(stored) == stored.hash
    assert audit.verify(people.case).ok
