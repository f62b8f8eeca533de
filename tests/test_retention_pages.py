"""The retention pages: what the case page says, the staff preview, certificates, and early
deletion under dual control (an owner asks, a different admin approves)."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.urls import reverse

from analysis import retention
from analysis.models import AuditEvent, DeletionRequest, MediaAsset, PurgeRun, RetentionPolicy
from tests.retention_world import T0, at, chains_ok, close, days, files_of, item, policy, purge

pytestmark = pytest.mark.django_db


@pytest.fixture
def sync_purge(monkeypatch):
    """The approval's purge task, run in the request (as the worker would, right after)."""
    from analysis import tasks

    monkeypatch.setattr(tasks.purge_case, "delay", lambda case_id: tasks.purge_case(case_id))


def test_every_member_sees_the_schedule_and_the_hold_banner(client, people):
    with at(T0):
        item(people.case, people.alice)
    policy(originals_days=30, originals_after="uploaded")
    retention.place_hold(people.case, user=people.alice, reason="Subpoena 88", matter="M-7")
    client.force_login(people.carol)
    page = client.get(reverse("case-detail", args=[people.case.id])).content.decode()
    assert "1 originals purge on 2027-02-03 under the global policy." in page
    assert "Legal hold." in page and "Subpoena 88" in page and "matter M-7" in page
    client.force_login(people.alice)
    page = client.get(reverse("case-detail", args=[people.case.id])).content.decode()
    assert "Editing the case and changing its status are refused under legal hold" in page
    assert reverse("case-edit", args=[people.case.id]) not in page


def test_an_owner_overrides_the_policy_and_it_is_audited(client, people):
    policy(originals_days=30)
    client.force_login(people.alice)
    data = {f"{s}_after": "closed" for s in ("originals", "derived", "analysis", "case")}
    reply = client.post(reverse("case-retention-policy", args=[people.case.id]),
                        {**data, "originals_days": "7", "keep_title": "on"})  # fmt: skip
    assert reply.status_code == 302
    assert retention.effective_policy(people.case).rule("originals") == (7, "closed")
    event = AuditEvent.objects.get(case=people.case, action="retention.changed")
    assert event.details["old"] is None and event.details["new"]["originals"] == [7, "closed"]


def test_a_case_anchor_that_makes_no_sense_is_refused(client, people):
    client.force_login(people.alice)
    data = {f"{s}_after": "closed" for s in ("originals", "derived", "analysis", "case")}
    data["analysis_after"] = "uploaded"
    reply = client.post(reverse("case-retention-policy", args=[people.case.id]), data)
    assert reply.status_code == 200 and not RetentionPolicy.objects.exists()


def test_no_override_when_staff_forbid_it(client, people):
    policy(originals_days=30, allow_case_overrides=False)
    client.force_login(people.alice)
    reply = client.post(reverse("case-retention-policy", args=[people.case.id]), {})
    assert reply.status_code == 403


def test_the_staff_preview_lists_the_next_run_with_sizes(client, people):
    with at(T0):
        asset = item(people.case, people.alice)
        close(people.case)
    policy(originals_days=1, derived_days=1)
    client.force_login(people.bob)
    assert client.get(reverse("staff-retention")).status_code == 404
    with at(T0 + days(2)):  # signed in then: a session does not outlive its lifetime
        client.force_login(people.admin)
        page = client.get(reverse("staff-retention")).content.decode().replace("\xa0", " ")
    assert people.case.title in page and f"1 ({asset.size} bytes)" in page


def test_certificates_match_the_chain(client, people):
    with at(T0):
        asset = item(people.case, people.alice)
        close(people.case)
    policy(originals_days=1)
    with at(T0 + days(2)):
        run = purge()
    client.force_login(people.alice)
    url = reverse("case-purge-certificate", args=[people.case.id])
    body = b"".join(client.get(url, {"run": run.pk}).streaming_content)
    certified = AuditEvent.objects.get(case=people.case, action="retention.purged")
    assert hashlib.sha256(body).hexdigest() == certified.details["certificate_sha256"]
    document = json.loads(body)
    assert [(i["kind"], i["sha256"], i["size"]) for i in document["items"]] == [
        ("original", asset.sha256, asset.size)
    ]
    client.force_login(people.admin)
    body = b"".join(client.get(reverse("purge-run-certificate", args=[run.pk])).streaming_content)
    assert hashlib.sha256(body).hexdigest() == PurgeRun.objects.get().certificate_sha256


def test_early_deletion_needs_an_owner_and_a_different_admin(client, people, sync_purge):
    with at(T0):
        asset = item(people.case, people.alice)
    people.alice.is_staff = True  # an owner who is also an admin may not approve herself
    people.alice.save()
    client.force_login(people.alice)
    client.post(reverse("case-deletion-request", args=[people.case.id]), {"reason": "Consent gone"})
    row = DeletionRequest.objects.get()
    client.post(reverse("deletion-request-decide", args=[row.pk]), {"decision": "approve"})
    row.refresh_from_db()
    assert row.state == "pending" and files_of(asset)
    client.force_login(people.admin)
    client.post(reverse("deletion-request-decide", args=[row.pk]), {"decision": "approve"})
    row.refresh_from_db()
    people.case.refresh_from_db()
    assert row.state == "done" and people.case.status == "purged" and not files_of(asset)
    actions = set(AuditEvent.objects.filter(case=people.case).values_list("action", flat=True))
    assert {"retention.requested", "retention.approved", "retention.tombstone"} <= actions
    assert chains_ok()


def test_an_item_of_a_closed_case_goes_only_after_approval(client, people, sync_purge):
    with at(T0):
        asset, other = item(people.case, people.alice, 1), item(people.case, people.alice, 2)
        close(people.case)
    client.force_login(people.alice)
    url = reverse("case-deletion-request", args=[people.case.id])
    client.post(url, {"reason": "Wrong patient", "asset": asset.pk})
    client.force_login(people.admin)
    row = DeletionRequest.objects.get()
    client.post(reverse("deletion-request-decide", args=[row.pk]), {"decision": "approve"})
    assert MediaAsset.objects.get(pk=asset.pk).status == "purged" and not files_of(asset)
    assert MediaAsset.objects.get(pk=other.pk).status == "ready" and files_of(other)


def test_nothing_under_hold_can_be_requested_or_approved(client, people):
    client.force_login(people.alice)
    url = reverse("case-deletion-request", args=[people.case.id])
    client.post(url, {"reason": "Before the hold"})
    retention.place_hold(people.case, user=people.admin, reason="Subpoena 88")
    assert client.post(url, {"reason": "Under hold"}).status_code == 403
    client.force_login(people.admin)
    row = DeletionRequest.objects.get()
    client.post(reverse("deletion-request-decide", args=[row.pk]), {"decision": "approve"})
    row.refresh_from_db()
    assert row.state == "pending" and DeletionRequest.objects.count() == 1


def test_staff_place_and_lift_holds_from_outside(client, people):
    client.force_login(people.admin)
    client.post(reverse("case-hold-place", args=[people.case.id]), {"reason": "Regulator"})
    (hold,) = retention.standing_holds(people.case.pk)
    reply = client.post(reverse("case-hold-lift", args=[people.case.id, hold.pk]), {})
    assert retention.standing_holds(people.case.pk) and reply.status_code == 302
    client.post(reverse("case-hold-lift", args=[people.case.id, hold.pk]), {"reason": "Done"})
    assert not retention.standing_holds(people.case.pk)


def test_a_purged_case_stays_readable_as_a_tombstone(client, people):
    with at(T0):
        item(people.case, people.alice)
        close(people.case)
    policy(case_days=1)
    with at(T0 + days(2)):
        purge()
    client.force_login(people.alice)
    page = client.get(reverse("case-detail", args=[people.case.id]))
    assert page.status_code == 200 and "Purged" in page.content.decode()
    verified = client.post(reverse("case-audit-verify", args=[people.case.id]))
    assert verified.status_code == 200 and chains_ok()
