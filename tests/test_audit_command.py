"""manage.py verify_audit: exit 0 when intact, 1 naming the first broken link, 2 on bad use."""

from __future__ import annotations

import uuid

import pytest
from django.core.management import execute_from_command_line
from django.db import connections

from analysis import audit, audit_seal
from analysis.models import AuditEvent, Case
from tests.audit_helpers import forge, rechain

pytestmark = pytest.mark.django_db
A = AuditEvent.Action


@pytest.fixture
def verify_audit(monkeypatch):
    """Run the command as the shell would (argv, exit status), in the test's transaction.

    A command run from argv closes every database connection when it ends, which would
    end the test's transaction on PostgreSQL: keep them open.
    """
    monkeypatch.setattr(connections, "close_all", lambda: None)

    def run(*args: str) -> int:
        try:
            execute_from_command_line(["manage.py", "verify_audit", *args])
        except SystemExit as exit:
            return exit.code
        return 0

    return run


@pytest.fixture
def trail(people):
    audit.record(A.SIGN_IN, actor=people.alice)
    events = [audit.record(A.CASE_EDITED, case=people.case, details={"n": n}) for n in range(5)]
    return events


def test_it_exits_0_when_every_chain_verifies(verify_audit, trail, capsys):
    audit_seal.seal()
    assert verify_audit() == 0
    out = capsys.readouterr().out
    assert "OK: 2 chain(s), 6 event(s), 2 sealed head(s) matched" in out


def test_it_warns_when_there_are_no_seals_yet(verify_audit, trail, capsys):
    assert verify_audit("--all") == 0
    assert "no seals" in capsys.readouterr().err


def test_it_exits_1_and_names_the_forged_row(verify_audit, trail, people, capsys):
    forge(trail[2], details={"n": "forged"})
    assert verify_audit() == 1
    err = capsys.readouterr().err
    assert f"BROKEN case:{people.case.id} at #3 event {trail[2].id}" in err
    assert "row was changed" in err


def test_it_exits_1_when_a_rewritten_chain_contradicts_its_seal(
    verify_audit, trail, people, capsys
):
    audit_seal.seal()
    forge(trail[0], details={"n": "forged"})
    rechain(people.case)
    assert verify_audit("--case", str(people.case.id)) == 1
    assert f"at #5 event {trail[4].id}" in capsys.readouterr().err


def test_it_checks_only_the_cases_asked_for(verify_audit, trail, people, capsys):
    other = Case.create_with_owner(user=people.bob, title="Other")
    forged = audit.record(A.CASE_EDITED, case=other)
    forge(forged, target_id="x")
    assert verify_audit("--case", str(people.case.id)) == 0
    assert verify_audit("--case", str(other.id)) == 1
    assert verify_audit("--case", str(people.case.id), "--all") == 1


def test_it_checks_the_seal_file_it_is_given(
    verify_audit, trail, people, tmp_path, settings, capsys
):
    audit_seal.seal()
    worm = tmp_path / "worm-copy.log"
    worm.write_bytes(settings.AUDIT_SEAL_PATH.read_bytes())
    settings.AUDIT_SEAL_PATH.unlink()  # the local copy is gone; the WORM copy is not
    forge(trail[0], details={"n": "forged"})
    rechain(people.case)
    assert verify_audit() == 0  # without seals, a careful forger gets through
    assert verify_audit("--seal-file", str(worm)) == 1


def test_it_fails_on_a_damaged_seal_file(verify_audit, trail, settings, capsys):
    audit_seal.seal()
    with settings.AUDIT_SEAL_PATH.open("a") as f:
        f.write("garbage\n")
    assert verify_audit() == 1
    assert "not a seal line" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [["--case", "not-a-uuid"], ["--case", str(uuid.uuid4())], ["--seal-file", "/nonexistent"]],
)
def test_it_exits_2_on_bad_arguments(verify_audit, trail, args):
    assert verify_audit(*args) == 2
