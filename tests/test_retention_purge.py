"""The purge run: holds stop it, a killed run resumes cleanly, purged bytes are unreachable."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.urls import reverse

from analysis import audit, retention, retention_purge
from analysis.media import storage
from analysis.models import AuditEvent, MediaAsset, PurgeRecord, PurgeRun
from tests.retention_world import (
    T0,
    answer,
    at,
    cached,
    chains_ok,
    close,
    days,
    files_of,
    item,
    policy,
    purge,
)

pytestmark = pytest.mark.django_db


def _whole_case_due(people, n: int = 1):
    with at(T0):
        assets = [item(people.case, people.alice, i) for i in range(n)]
        close(people.case)
    policy(case_days=30)
    return assets


def test_a_held_case_survives_and_goes_once_the_last_hold_is_lifted(people):
    (asset,) = _whole_case_due(people)
    first = retention.place_hold(people.case, user=people.alice, reason="Litigation 17")
    second = retention.place_hold(people.case, user=people.admin, reason="Regulator", matter="R-9")
    with at(T0 + days(31)):
        purge()
        assert MediaAsset.objects.get(pk=asset.pk).status == "ready" and files_of(asset)
        retention.lift_hold(first, user=people.alice, reason="Settled")
        purge()
        assert MediaAsset.objects.get(pk=asset.pk).status == "ready"
        retention.lift_hold(second, user=people.admin, reason="Closed by the regulator")
        purge()
    people.case.refresh_from_db()
    assert people.case.status == "purged" and not files_of(asset)
    lifted = AuditEvent.objects.filter(action="retention.hold_lifted").order_by("seq")
    assert [e.details["holds_still_standing"] for e in lifted] == [1, 0]
    assert chains_ok()


def test_a_hold_placed_between_items_stops_the_rest(people, monkeypatch):
    assets = _whole_case_due(people, 3)
    original = retention_purge.purge_media_item

    def then_hold(*args):
        done = original(*args)
        if not retention.standing_holds(people.case.pk):
            retention.place_hold(people.case, user=people.alice, reason="Subpoena")
        return done

    monkeypatch.setattr(retention_purge, "purge_media_item", then_hold)
    with at(T0 + days(31)):
        purge()
    statuses = sorted(MediaAsset.objects.values_list("status", flat=True))
    assert statuses == ["purged", "ready", "ready"]
    people.case.refresh_from_db()
    assert people.case.status == "closed"
    assert sum(bool(files_of(a)) for a in assets) == 2


def test_an_interrupted_purge_finishes_on_the_next_run(people, monkeypatch):
    n, k = 6, 3
    assets = _whole_case_due(people, n)
    calls = {"n": 0}
    redact = audit.redact_target

    def fail_after_k(target_id):
        calls["n"] += 1
        if calls["n"] == k + 1:  # item k+1: its files are already gone, its rows not yet
            raise RuntimeError("killed")
        return redact(target_id)

    monkeypatch.setattr(audit, "redact_target", fail_after_k)
    with at(T0 + days(31)), pytest.raises(RuntimeError):
        purge()
    assert PurgeRecord.objects.filter(kind="original").count() == k
    monkeypatch.setattr(audit, "redact_target", redact)
    with at(T0 + days(32)):
        second = purge()
    first = PurgeRun.objects.exclude(pk=second.pk).get()
    assert first.state == "interrupted" and first.items == 2 * k and first.certificate_sha256
    assert second.state == "finished"
    # Nothing orphaned on disk, no row pointing at a missing file, nothing purged twice.
    assert storage.stored_keys() == [] and not list(storage.root().rglob("*.png"))
    assert not MediaAsset.objects.exclude(status="purged").exists()
    originals = PurgeRecord.objects.filter(kind="original")
    assert sorted(originals.values_list("target_id", flat=True)) == sorted(a.pk for a in assets)
    for run in (first, second):
        header, records = retention_purge.run_certificate(run)
        assert run.certificate_sha256 == retention_purge.digest(header, records)
        certified = AuditEvent.objects.filter(case=None, target_id=str(run.pk)).get()
        assert certified.details["certificate_sha256"] == run.certificate_sha256
    assert AuditEvent.objects.filter(case=people.case, action="retention.purged").count() == 2
    assert chains_ok()
    call_command("verify_audit")


def test_after_a_purge_no_url_gives_a_byte_of_it(client, people):
    with at(T0):
        asset = item(people.case, people.alice)
        close(people.case)
    thumb = asset.derived["thumbnail"]
    urls = [
        reverse("media-file", args=[people.case.id, asset.id]),
        reverse("media-file", args=[people.case.id, asset.id]) + "?download=1",
        reverse("media-derived", args=[people.case.id, asset.id, thumb]),
    ]
    client.force_login(people.alice)
    assert [client.get(url).status_code for url in urls] == [200, 200, 200]
    policy(originals_days=1, derived_days=1)
    with at(T0 + days(2)):
        purge()
    assert [client.get(url).status_code for url in urls] == [404, 404, 404]
    assert storage.stored_keys() == [] and not cached(asset.sha256)
    assert not list(storage.root().rglob(str(asset.id)))


def test_the_dry_run_lists_and_changes_nothing(people, capsys):
    (asset,) = _whole_case_due(people)
    with at(T0 + days(31)):
        call_command("purge_expired", "--dry-run")
    out = capsys.readouterr().out
    assert "1 originals" in out and "the whole case" in out and "nothing was deleted" in out
    assert files_of(asset) and not PurgeRun.objects.exists()
    with at(T0 + days(31)):
        call_command("purge_expired")
    assert not files_of(asset)


def test_the_triggers_still_refuse_every_other_change(people):
    with at(T0):
        asset = item(people.case, people.alice)
    event = AuditEvent.objects.filter(target_id=str(asset.pk)).first()
    changes = [
        {"details": {"x": 1}},
        {"details": {}},
        {"ip": None, "user_agent": "", "details": {}},
        {"ip": None, "user_agent": "", "details": {}, "redacted_body_hash": "0" * 64,
         "action": "case.edited"},
        {"ip": None, "user_agent": "", "details": {"kept": 1}, "redacted_body_hash": "0" * 64},
    ]  # fmt: skip
    for change in changes:
        with pytest.raises(IntegrityError), transaction.atomic():
            AuditEvent.objects.filter(pk=event.pk).update(**change)
    assert audit.redact(AuditEvent.objects.filter(pk=event.pk))
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(redacted_body_hash="1" * 64)
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert chains_ok()


def test_an_analysis_answered_long_ago_goes_alone(people):
    with at(T0):
        analysis = answer(people.case, people.bob)
    policy(analysis_days=5, analysis_after="answered")
    with at(T0 + days(5)):
        run = purge()
    analysis.refresh_from_db()
    assert analysis.answer == "" and run.items == 1


def test_the_daily_run_is_scheduled_at_the_configured_time(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["purge-expired"]
    assert entry["task"] == "analysis.tasks.purge_expired"
    assert entry["schedule"].hour == {3} and entry["schedule"].minute == {30}
