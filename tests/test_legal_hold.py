"""Legal hold: while one stands, every route that would change the case refuses, saying why."""

from __future__ import annotations

import pytest
from django.urls import reverse

from analysis import retention
from analysis.models import AuditEvent, MediaAsset
from tests.test_case_access import MATRIX, send, url_for, world  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db
REASON = "Litigation hold for matter Acme v. Foo"
# What stays possible under a hold: reading the case, its media, answers and audit trail,
# and the holds themselves (another may be placed; lifting needs a reason).
READS = {
    "case-retention", "case-purge-certificate", "case-hold-place", "case-hold-lift",
    "case-detail", "member-list", "break-glass", "analysis-detail", "case-audit",
    "case-audit-verify", "case-audit-csv", "case-audit-json", "media-upload", "media-detail",
    "media-file", "media-derived", "case-report", "case-queue", "case-templates", "batch-row",
    "batch-csv",
}  # fmt: skip
CHANGES = sorted(set(MATRIX) - READS)


@pytest.fixture
def held(world):  # noqa: F811
    case, users, analysis, membership = world
    retention.place_hold(case, user=users["owner"], reason=REASON, matter="M-1")
    return world


@pytest.mark.parametrize("name", CHANGES)
def test_the_owner_is_refused_every_change_with_the_reason(held, client, name):
    case, users, analysis, membership = held
    method, data, _ = MATRIX[name]
    client.force_login(users["owner"])
    before = AuditEvent.objects.count()
    response = send(client, method, url_for(name, case.id, analysis, membership), data, name)
    assert response.status_code == 403, name
    assert REASON in response.content.decode(), name
    assert AuditEvent.objects.count() == before


def test_reads_still_work_under_hold(held, client):
    case, users, analysis, membership = held
    client.force_login(users["viewer"])
    for name in ("case-detail", "media-detail", "case-audit", "analysis-detail"):
        response = client.get(url_for(name, case.id, analysis, membership))
        assert response.status_code == 200, name


def test_a_held_item_cannot_be_deleted_and_keeps_its_files(held, client):
    case, users, analysis, membership = held
    asset = MediaAsset.objects.filter(case=case).first()
    client.force_login(users["owner"])
    client.post(reverse("media-delete", args=[case.id, asset.id]))
    asset.refresh_from_db()
    assert asset.status == "ready"


def test_a_policy_override_cannot_change_under_hold(held):
    case, users, _, _ = held
    with pytest.raises(retention.HeldError, match="Litigation hold"):
        retention.save_policy(case=case, values={"originals_days": 1}, user=users["owner"])


def test_every_member_sees_the_banner_on_the_item_page(held, client):
    case, users, analysis, membership = held
    client.force_login(users["viewer"])
    page = client.get(url_for("media-detail", case.id, analysis, membership)).content.decode()
    assert "Legal hold." in page and REASON in page


def test_the_jobs_page_offers_no_cancel_in_a_held_case(held, client):
    case, users, analysis, membership = held
    client.force_login(users["reviewer"])
    page = client.get(reverse("jobs")).content.decode()
    assert analysis.question in page
    assert reverse("analysis-cancel", args=[case.id, analysis.id]) not in page
