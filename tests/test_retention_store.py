"""The retention purge on both stores: purged originals and derived files leave the store.

The purge's own tests move every clock (time-machine); an object store refuses requests
signed at another time, so here only Django's clock moves, past the policy's period.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from analysis.media import storage
from analysis.models import MediaAsset
from tests.media_api import files_on_disk
from tests.retention_world import close, item, policy, purge

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_store")]


def test_a_purge_removes_the_files_from_the_store_and_no_url_serves_them(
    client, people, monkeypatch
):
    asset = item(people.case, people.alice)
    close(people.case)
    assert len(storage.item_files(asset.case_id, asset.id)) == 2  # original and thumbnail
    urls = [
        reverse("media-file", args=[people.case.id, asset.id]),
        reverse("media-derived", args=[people.case.id, asset.id, asset.derived["thumbnail"]]),
    ]
    policy(originals_days=1, derived_days=1)
    later = timezone.now() + timedelta(days=2)
    monkeypatch.setattr(timezone, "now", lambda: later)
    run = purge()
    assert run.state == "finished"
    asset.refresh_from_db()
    assert asset.status == MediaAsset.Status.PURGED
    assert storage.item_files(asset.case_id, asset.id) == [] and files_on_disk() == []
    client.force_login(people.alice)
    assert [client.get(url).status_code for url in urls] == [404, 404]
