"""Deleting an item (owners): the files go, the row stays as proof, the audit trail says who."""

from __future__ import annotations

import pytest
from django.urls import reverse

from analysis.media import removal
from analysis.models import AuditEvent, MediaAsset
from tests import media_samples as samples
from tests.media_api import files_on_disk, make_asset, upload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_store")]


def delete(client, asset):
    return client.post(reverse("media-delete", args=[asset.case_id, asset.id]))


def test_an_owner_deletes_the_files_and_the_record_stays(
    client, people, django_capture_on_commit_callbacks
):
    asset = make_asset(people.case, people.bob, samples.video(), "clip.mp4")
    assert len(files_on_disk()) > 1  # original, poster, strip
    client.force_login(people.alice)
    with django_capture_on_commit_callbacks(execute=True):
        assert delete(client, asset).status_code == 302
    asset.refresh_from_db()
    assert asset.status == MediaAsset.Status.DELETED
    assert (asset.deleted_by, asset.uploaded_by) == (people.alice, people.bob)
    assert asset.deleted_at is not None and len(asset.sha256) == 64
    assert files_on_disk() == []
    event = AuditEvent.objects.get(action=AuditEvent.Action.MEDIA_DELETED)
    assert (event.actor, event.target_id) == (people.alice, str(asset.id))
    assert event.details["sha256"] == asset.sha256


def test_the_deleted_items_page_still_shows_its_record(client, people):
    asset = make_asset(people.case, people.bob, samples.image("png"), "a.png")
    client.force_login(people.alice)
    delete(client, asset)
    page = client.get(reverse("media-detail", args=[asset.case_id, asset.id])).content.decode()
    assert "Deleted by alice" in page and asset.sha256 in page


def test_the_same_bytes_may_come_back_after_a_delete(client, people):
    data = samples.image("png")
    asset = make_asset(people.case, people.bob, data, "a.png")
    client.force_login(people.alice)
    delete(client, asset)
    again = upload(client, people.case, data, "a.png").json()
    assert again["duplicate"] is False and again["asset"] != str(asset.id)


def test_a_reviewer_may_not_delete(client, people):
    asset = make_asset(people.case, people.bob, samples.image("png"), "a.png")
    client.force_login(people.bob)
    assert delete(client, asset).status_code == 403
    assert MediaAsset.objects.get().status == MediaAsset.Status.READY


def test_nothing_is_deleted_in_a_closed_case(client, people):
    asset = make_asset(people.case, people.bob, samples.image("png"), "a.png")
    people.case.transition("close")
    client.force_login(people.alice)
    assert delete(client, asset).status_code == 403


def test_the_sweep_removes_files_a_crash_left_behind(people):
    asset = make_asset(people.case, people.bob, samples.image("png"), "a.png")
    assert asset.mark_deleted(people.alice)  # committed, and then the process died
    assert files_on_disk() != []
    assert removal.sweep_deleted() == 1
    assert files_on_disk() == [] and removal.sweep_deleted() == 0
