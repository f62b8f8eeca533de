"""`manage.py verify_media`: re-hash every original, name the ones that differ, exit non-zero."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from analysis.models import AuditEvent, Case
from tests import media_samples as samples
from tests.media_api import drop_original, make_asset, tamper

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_store")]


def test_all_originals_match(people, capsys):
    asset = make_asset(people.case, people.bob, samples.image("png"), "a.png")
    call_command("verify_media")
    assert "All 1 originals match" in capsys.readouterr().out
    asset.refresh_from_db()
    assert asset.hash_verified_at is not None
    event = AuditEvent.objects.get(action=AuditEvent.Action.MEDIA_HASH_VERIFIED)
    assert event.details["via"] == "verify_media" and event.actor is None


def test_a_changed_original_fails_the_command_by_name(people):
    good = make_asset(people.case, people.bob, samples.image("png"), "good.png")
    bad = make_asset(people.case, people.bob, samples.wav(), "altered.wav")
    tamper(bad)
    with pytest.raises(CommandError, match=rf"1 of 2 originals.*altered\.wav \({bad.id}\)"):
        call_command("verify_media")
    bad.refresh_from_db()
    good.refresh_from_db()
    assert bad.hash_mismatch is True and good.hash_mismatch is False
    event = AuditEvent.objects.get(action=AuditEvent.Action.MEDIA_HASH_MISMATCH)
    assert event.target_id == str(bad.id) and event.details["found"] != bad.sha256


def test_a_missing_original_fails_the_command(people):
    asset = make_asset(people.case, people.bob, samples.image("png"), "gone.png")
    drop_original(asset)
    with pytest.raises(CommandError, match="gone.png"):
        call_command("verify_media")


def test_it_checks_one_case_when_asked(people, capsys):
    other = Case.create_with_owner(user=people.bob, title="Other")
    tamper(make_asset(other, people.bob, samples.image("png"), "elsewhere.png"))
    make_asset(people.case, people.bob, samples.wav(), "here.wav")
    call_command("verify_media", "--case", str(people.case.id))
    assert "All 1 originals match" in capsys.readouterr().out


def test_the_exit_status_is_non_zero(people):
    tamper(make_asset(people.case, people.bob, samples.image("png"), "a.png"))
    with pytest.raises(SystemExit) as exit_:
        from django.core.management import execute_from_command_line

        execute_from_command_line(["manage.py", "verify_media"])
    assert exit_.value.code == 1
