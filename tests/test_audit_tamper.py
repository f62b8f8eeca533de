"""A forged audit trail is caught: an edited row by its own hash, a rewritten chain (every
hash recomputed) by the seals, removed events by the sequence or the seals."""

from __future__ import annotations

import pytest

from analysis import audit, audit_seal
from analysis.audit_hash import event_hash
from analysis.models import AuditEvent
from tests.audit_helpers import forge, rechain, triggers_lifted

pytestmark = pytest.mark.django_db
A = AuditEvent.Action


@pytest.fixture
def chain(people) -> list[AuditEvent]:
    return [
        audit.record(A.CASE_EDITED, actor=people.alice, case=people.case, details={"n": n})
        for n in range(1, 7)
    ]


def test_an_intact_chain_verifies(chain, people):
    result = audit.verify(people.case)
    assert result.ok and result.checked == 6
    assert (result.head_seq, result.head_hash) == (6, chain[-1].hash)


@pytest.mark.parametrize(
    "changes",
    [
        {"details": {"n": 99}},
        {"actor": None},
        {"action": A.CASE_ARCHIVED},
        {"ip": "203.0.113.66"},
        {"target_id": "someone-else"},
    ],
)
def test_editing_one_row_is_reported_at_exactly_that_row(chain, people, changes):
    forge(chain[3], **changes)
    result = audit.verify(people.case)
    assert not result.ok
    assert (result.bad_seq, result.bad_event_id) == (4, str(chain[3].id))
    assert "row was changed" in result.reason
    assert result.checked == 3


def test_rewriting_a_row_and_its_hash_breaks_the_next_link(chain, people):
    forge(chain[3], details={"n": 99})
    chain[3].refresh_from_db()
    forge(chain[3], hash=event_hash(chain[3]))
    result = audit.verify(people.case)
    assert (result.ok, result.bad_seq) == (False, 5)
    assert "prev_hash" in result.reason


def test_recomputing_the_whole_chain_is_caught_by_the_seal(chain, people):
    audit_seal.seal()  # the beat task ran before the forger came
    audit.record(A.CASE_CLOSED, case=people.case)  # and the case moved on
    forge(chain[1], details={"n": "forged"})
    rechain(people.case)
    assert audit.verify(people.case, seals=audit_seal.Seals()).ok  # links alone: fooled
    result = audit.verify(people.case)
    assert not result.ok
    assert (result.bad_seq, result.bad_event_id) == (6, str(chain[5].id))  # the sealed head
    assert "sealed" in result.reason


def test_a_row_removed_from_the_middle_is_reported(chain, people):
    with triggers_lifted():
        AuditEvent.objects.filter(pk=chain[2].pk).delete()
    result = audit.verify(people.case)
    assert (result.ok, result.bad_seq, result.bad_event_id) == (False, 4, str(chain[3].id))
    assert "#3" in result.reason and "missing" in result.reason


def test_a_chain_cut_short_after_its_seal_is_reported(chain, people):
    audit_seal.seal()
    with triggers_lifted():
        AuditEvent.objects.filter(case=people.case, seq__gte=5).delete()
    result = audit.verify(people.case)
    assert (result.ok, result.bad_seq) == (False, 6)
    assert "cut short" in result.reason


def test_a_case_chain_removed_entirely_is_still_found_through_its_seals(chain, people):
    audit_seal.seal()
    with triggers_lifted():
        AuditEvent.objects.filter(case=people.case).delete()
    broken = [r for r in audit.verify_all() if not r.ok]
    assert [r.chain for r in broken] == [f"case:{people.case.id}"]
