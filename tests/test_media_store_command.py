"""`manage.py media_store`: which store, and whether originals are written under a lock."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def run() -> str:
    from io import StringIO

    out = StringIO()
    call_command("media_store", stdout=out)
    return out.getvalue()


@pytest.mark.usefixtures("media_store")
def test_it_names_the_store_and_its_lock(media_store):
    said = run()
    if media_store == "filesystem":
        assert "store: filesystem" in said and "free:" in said
    else:
        assert "bucket gemma-test" in said and "versioning: Enabled" in said
        assert "object lock: on; originals kept 1 days in GOVERNANCE mode" in said
        assert "worker cache:" in said


def test_with_the_lock_off_it_says_so(settings, seaweedfs, tmp_path):
    from tests.object_store import use_object_store

    use_object_store(settings, seaweedfs, tmp_path)
    settings.S3_OBJECT_LOCK = "off"
    assert "object lock: off (S3_OBJECT_LOCK=off)" in run()


def test_an_unreachable_store_fails(settings, tmp_path):
    settings.MEDIA_STORAGE = "s3"
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    settings.S3_BUCKET = "nowhere"
    with pytest.raises(CommandError, match="does not answer"):
        run()
