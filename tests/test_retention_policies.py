"""Every policy choice under a frozen clock: nothing goes a day early, everything goes on time.

Runs on SQLite, and on PostgreSQL with DATABASE_URL set (both are run before landing).
"""

from __future__ import annotations

import pytest

from analysis import audit, retention
from analysis.models import AuditEvent, MediaAsset, PurgeRecord
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


@pytest.fixture
def world(people):
    with at(T0):
        asset = item(people.case, people.alice)
        analysis = answer(people.case, people.bob, asset)
    return people, asset, analysis


def _refresh(*rows):
    for row in rows:
        row.refresh_from_db()


@pytest.mark.parametrize("after", ["uploaded", "closed"])
def test_it_purges_originals_on_time(world, after):
    people, asset, analysis = world
    policy(originals_days=30, originals_after=after)
    with at(T0 + days(1)):
        close(people.case)
    start = T0 + days(1) if after == "closed" else T0
    with at(start + days(30) - days(0.01)):
        purge()
    _refresh(asset)
    assert asset.status == "ready" and files_of(asset)
    with at(start + days(30)):
        purge()
    _refresh(asset, analysis)
    assert asset.status == "purged" and asset.purged_at is not None
    assert not storage_original_exists(asset)
    # Only the original: the thumbnail, the answer and the case stay.
    assert asset.derived and files_of(asset)
    assert analysis.answer and people.case.status == "closed"
    record = PurgeRecord.objects.get(kind="original")
    assert (record.sha256, record.size) == (asset.sha256, asset.size)
    assert record.policy["days"] == 30 and record.policy["after"] == after
    assert chains_ok()


def storage_original_exists(asset: MediaAsset) -> bool:
    from analysis.media import storage

    return storage.original_size(asset.case_id, asset.id) is not None


@pytest.mark.parametrize("after", ["uploaded", "closed"])
def test_it_purges_derived_files_on_time(world, after):
    people, asset, _ = world
    policy(derived_days=7, derived_after=after)
    with at(T0):
        close(people.case)
    with at(T0 + days(6)):
        purge()
    _refresh(asset)
    assert asset.derived and cached(asset.sha256)
    with at(T0 + days(7)):
        purge()
    _refresh(asset)
    assert asset.derived == {} and asset.derived_purged_at is not None
    assert asset.status == "ready" and storage_original_exists(asset)
    assert files_of(asset) == [files_of(asset)[0]]  # the original alone
    assert not cached(asset.sha256)
    assert PurgeRecord.objects.get(kind="derived").size > 0


@pytest.mark.parametrize("after", ["answered", "closed"])
def test_it_purges_analysis_text_on_time(world, after):
    people, asset, analysis = world
    policy(analysis_days=90, analysis_after=after)
    with at(T0 + days(10)):
        close(people.case)
    due = T0 + days(90) + (days(10) if after == "closed" else days(0))
    with at(due - days(1)):
        purge()
    _refresh(analysis)
    assert analysis.answer
    with at(due):
        purge()
    _refresh(analysis, asset)
    assert (analysis.question, analysis.answer, analysis.record) == ("", "", {})
    assert not analysis.chunks.exists() and analysis.text_purged_at is not None
    asked = AuditEvent.objects.get(action="analysis.asked")
    assert asked.details == {} and asked.redacted_body_hash
    assert asset.status == "ready"
    assert chains_ok()


def test_it_purges_the_whole_case_and_keeps_a_tombstone(world):
    people, asset, analysis = world
    policy(case_days=365, keep_title=False)
    with at(T0 + days(2)):
        close(people.case)
        audit.record(AuditEvent.Action.CASE_CLOSED, case=people.case, actor=people.alice,
                     details={"from": "open", "to": "closed"})  # fmt: skip
    with at(T0 + days(366)):
        purge()
    people.case.refresh_from_db()
    assert people.case.status == "closed"
    with at(T0 + days(367)):
        purge()
    people.case.refresh_from_db()
    _refresh(asset, analysis)
    assert people.case.status == "purged" and people.case.title == "Purged case"
    assert asset.status == "purged" and not files_of(asset) and not cached(asset.sha256)
    assert analysis.answer == ""
    kinds = sorted(PurgeRecord.objects.values_list("kind", flat=True))
    assert kinds == ["analysis", "case", "derived", "original"]
    closed = AuditEvent.objects.get(action="case.closed")
    assert closed.details == {} and closed.redacted_body_hash
    assert AuditEvent.objects.filter(action="retention.tombstone", case=people.case).exists()
    assert chains_ok()


def test_keep_forever_keeps_everything(world):
    people, asset, analysis = world
    policy()  # every part: no days
    with at(T0):
        close(people.case)
    with at(T0 + days(365 * 30)):
        purge()
    _refresh(asset, analysis)
    assert asset.status == "ready" and analysis.answer and not PurgeRecord.objects.exists()


def test_without_any_policy_nothing_goes(world):
    people, asset, _ = world
    with at(T0 + days(365 * 30)):
        purge()
    _refresh(asset)
    assert asset.status == "ready"


def test_a_case_override_replaces_the_global_policy(world):
    people, asset, _ = world
    policy(originals_days=10, originals_after="uploaded")
    policy(case=people.case)  # this case keeps everything
    with at(T0 + days(11)):
        purge()
    _refresh(asset)
    assert asset.status == "ready"


def test_a_forbidden_override_is_ignored(world):
    people, asset, _ = world
    policy(originals_days=10, originals_after="uploaded", allow_case_overrides=False)
    policy(case=people.case)
    assert retention.effective_policy(people.case).source == "global"
    with at(T0 + days(11)):
        purge()
    _refresh(asset)
    assert asset.status == "purged"


def test_changing_a_policy_is_audited_with_old_and_new_values(people):
    retention.save_policy(case=None, values={"originals_days": 30}, user=people.admin)
    retention.save_policy(case=None, values={"originals_days": 60}, user=people.admin)
    event = AuditEvent.objects.filter(action="retention.changed").order_by("-seq").first()
    assert event.details["old"]["originals"] == [30, "closed"]
    assert event.details["new"]["originals"] == [60, "closed"]


def test_the_case_page_says_what_goes_and_when(world):
    people, asset, _ = world
    policy(originals_days=30, originals_after="uploaded")
    lines = {line.scope: line.text for line in retention.schedule(people.case).lines}
    assert lines["originals"] == "1 originals purge on 2027-02-03 under the global policy."
    assert lines["case"] == "The whole case is kept forever."
