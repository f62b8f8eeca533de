"""Sealing: the beat task appends each moved chain head to an append-only file."""

from __future__ import annotations

import re

import pytest
from django.conf import settings as django_settings

from analysis import audit, audit_seal, tasks
from analysis.models import AuditEvent, Case

pytestmark = pytest.mark.django_db
A = AuditEvent.Action
LINE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (global|case:[0-9a-f-]{36}) \d+ [0-9a-f]{64}"
)


def lines(settings) -> list[str]:
    return settings.AUDIT_SEAL_PATH.read_text().splitlines()


def test_it_seals_the_head_of_every_chain(people, settings):
    other = Case.create_with_owner(user=people.bob, title="Other")
    audit.record(A.SIGN_IN, actor=people.bob)
    audit.record(A.CASE_EDITED, case=people.case)
    head = audit.record(A.CASE_CLOSED, case=people.case)
    audit.record(A.CASE_EDITED, case=other)
    assert tasks.seal_audit_chains() == 3
    written = lines(settings)
    assert len(written) == 3 and all(LINE.fullmatch(line) for line in written)
    assert any(line.endswith(f"case:{people.case.id} 2 {head.hash}") for line in written)


def test_it_appends_only_the_chains_that_moved(people, settings):
    audit.record(A.SIGN_IN, actor=people.bob)
    audit.record(A.CASE_EDITED, case=people.case)
    audit_seal.seal()
    before = settings.AUDIT_SEAL_PATH.read_bytes()
    assert audit_seal.seal() == []  # nothing moved: nothing written
    moved = audit.record(A.CASE_CLOSED, case=people.case)
    [seal] = audit_seal.seal()
    assert (seal.chain, seal.seq, seal.hash) == (f"case:{people.case.id}", 2, moved.hash)
    after = settings.AUDIT_SEAL_PATH.read_bytes()
    assert after.startswith(before) and after[len(before) :].count(b"\n") == 1


def test_it_writes_nothing_without_events(people, settings):
    assert audit_seal.seal() == []
    assert not settings.AUDIT_SEAL_PATH.exists()


def test_it_reports_a_seal_line_that_was_tampered_with(people, settings):
    audit.record(A.CASE_EDITED, case=people.case)
    audit_seal.seal()
    with settings.AUDIT_SEAL_PATH.open("a") as f:
        f.write("yesterday case:nonsense 1 abc\n")
    seals = audit_seal.read_seals()
    assert seals.count == 1 and len(seals.errors) == 1
    assert ":2: not a seal line" in seals.errors[0]


def test_it_is_scheduled_hourly_on_the_default_queue():
    entry = django_settings.CELERY_BEAT_SCHEDULE["seal-audit-chains"]
    assert entry["task"] == "analysis.tasks.seal_audit_chains"
    assert entry["schedule"] == 3600.0
    assert django_settings.CELERY_TASK_ROUTES[entry["task"]] == {"queue": "default"}
