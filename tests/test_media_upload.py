"""The chunk API: start, send in order, resume from the confirmed offset, finish once."""

from __future__ import annotations

import os
import stat

import pytest

from analysis.media import storage, stores, uploads
from analysis.models import AuditEvent, Case, MediaAsset, MediaUpload
from tests import media_samples as samples
from tests.media_api import (
    files_on_disk,
    install_queue,
    put,
    sha256,
    start,
    stored_original,
    upload,
)  # fmt: skip

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_store")]


def assert_write_once(asset, media_store: str) -> None:
    """Read-only on the disk; on the object store, under a retention lock (WORM)."""
    if media_store == "filesystem":
        path = storage.original_path(asset.case_id, asset.id)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o440
        return
    store = stores.current()
    key = store._key(storage.original_key(asset.case_id, asset.id))
    retention = store.client.get_object_retention(Bucket=store.bucket, Key=key)["Retention"]
    assert retention["Mode"] == "GOVERNANCE"


@pytest.fixture
def bob(client, people, settings):
    settings.MEDIA_CHUNK_BYTES = 1024  # several chunks even for tiny test files
    client.force_login(people.bob)
    return client


def test_it_uploads_in_chunks_and_keeps_the_original_read_only(
    bob, people, django_capture_on_commit_callbacks, monkeypatch, media_store
):
    queue = install_queue(monkeypatch)
    data = samples.wav(seconds=0.3)  # ~4.8 KB: five chunks
    with django_capture_on_commit_callbacks(execute=True):
        reply = upload(bob, people.case, data, "call 0412.wav")
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "complete" and body["duplicate"] is False
    asset = MediaAsset.objects.get(pk=body["asset"])
    assert (asset.kind, asset.mime, asset.size) == ("audio", "audio/wav", len(data))
    assert asset.sha256 == sha256(data)
    assert asset.filename == "call 0412.wav"
    assert asset.uploaded_by == people.bob
    assert asset.status == MediaAsset.Status.CHECKING
    assert queue.ids == [str(asset.id)]  # queued for the media task once committed
    assert stored_original(asset) == data
    assert_write_once(asset, media_store)
    # The name on disk is the item's id: the client's file name is nowhere on disk.
    assert files_on_disk() == [f"originals/{people.case.id}/{asset.id}"]


def test_the_upload_is_recorded_in_the_audit_trail(bob, people):
    data = samples.image("png")
    asset = MediaAsset.objects.get(pk=upload(bob, people.case, data, "a.png").json()["asset"])
    event = AuditEvent.objects.get(action=AuditEvent.Action.MEDIA_UPLOADED)
    assert (event.case_id, event.actor, event.target_id) == (
        people.case.id,
        people.bob,
        str(asset.id),
    )
    assert event.details["sha256"] == sha256(data)
    assert event.details["size"] == len(data)


def test_the_confirmed_offset_can_be_asked_for(bob, people):
    data = samples.wav(seconds=0.2)
    url = start(bob, people.case, "a.wav", len(data)).json()["url"]
    put(bob, url, data[:1024], 0, len(data))
    reply = bob.get(url)
    assert reply.json()["offset"] == 1024
    assert reply["Upload-Offset"] == "1024"
    assert bob.head(url)["Upload-Offset"] == "1024"


def test_a_dropped_chunk_leaves_nothing_and_the_upload_resumes(bob, people):
    data = samples.wav(seconds=0.3)
    total = len(data)
    url = start(bob, people.case, "a.wav", total).json()["url"]
    assert put(bob, url, data[:1024], 0, total).status_code == 200
    # The connection drops half-way through the second chunk: fewer bytes than announced.
    cut = bob.put(
        url, data[1024:1500], content_type="application/octet-stream",
        headers={"Content-Range": f"bytes 1024-2047/{total}"},
    )  # fmt: skip
    assert cut.status_code == 400
    assert "send it again" in cut.json()["error"]
    assert bob.get(url).json()["offset"] == 1024
    assert storage.partial_path(cut.json()["upload"]).stat().st_size == 1024
    uploads.HASHERS.drop(cut.json()["upload"])  # as if it resumed in another process
    for first in range(1024, total, 1024):
        reply = put(bob, url, data[first : first + 1024], first, total)
    assert reply.json()["status"] == "complete"
    assert MediaAsset.objects.get().sha256 == sha256(data)


def test_the_same_bytes_twice_are_already_here(bob, people):
    data = samples.image("png")
    first = upload(bob, people.case, data, "one.png").json()
    second = upload(bob, people.case, data, "two.png").json()
    assert second["duplicate"] is True
    assert second["asset"] == first["asset"]
    assert second["asset_filename"] == "one.png"
    assert MediaAsset.objects.count() == 1
    assert len(files_on_disk()) == 1  # no second copy, no partial left


def test_a_known_hash_is_already_here_before_any_byte_is_sent(bob, people):
    data = samples.image("png")
    upload(bob, people.case, data, "one.png")
    reply = start(bob, people.case, "again.png", len(data), sha256=sha256(data))
    assert reply.status_code == 200
    assert reply.json()["duplicate"] is True
    assert MediaUpload.objects.filter(filename="again.png").count() == 0


def test_the_same_bytes_in_another_case_are_stored_again(bob, people):
    other = Case.create_with_owner(user=people.bob, title="Other")
    data = samples.image("png")
    upload(bob, people.case, data, "a.png")
    assert upload(bob, other, data, "a.png").json()["duplicate"] is False
    assert MediaAsset.objects.count() == 2


def test_bytes_that_differ_from_the_clients_hash_are_refused(bob, people):
    data = samples.image("png")
    url = start(bob, people.case, "a.png", len(data), sha256="0" * 64).json()["url"]
    reply = put(bob, url, data, 0, len(data))
    assert reply.status_code == 422
    assert "SHA-256 mismatch" in reply.json()["error"]
    assert not MediaAsset.objects.exists()
    assert files_on_disk() == []


def test_nobody_else_may_write_into_my_upload(client, people):
    client.force_login(people.bob)
    url = start(client, people.case, "a.png", 100).json()["url"]
    client.force_login(people.alice)
    assert put(client, url, b"x" * 100, 0, 100).status_code == 404


def test_an_upload_can_be_cancelled(bob, people):
    data = samples.wav(seconds=0.2)
    url = start(bob, people.case, "a.wav", len(data)).json()["url"]
    put(bob, url, data[:1024], 0, len(data))
    assert bob.delete(url).status_code == 204
    assert not MediaUpload.objects.exists()
    assert files_on_disk() == []


def test_a_closed_case_takes_no_uploads(bob, people):
    people.case.transition("close")
    assert start(bob, people.case, "a.png", 10).status_code == 403


def test_the_last_chunk_sent_again_gets_the_same_answer(bob, people):
    data = samples.image("png")
    url = start(bob, people.case, "a.png", len(data)).json()["url"]
    first = put(bob, url, data, 0, len(data)).json()
    again = put(bob, url, data, 0, len(data))
    assert again.status_code == 200
    assert again.json()["asset"] == first["asset"]
    assert MediaAsset.objects.count() == 1


def test_a_finished_session_says_what_the_file_became(bob, people):
    data = samples.image("png")
    url = start(bob, people.case, "a.png", len(data)).json()["url"]
    put(bob, url, data, 0, len(data))
    reply = bob.get(url).json()
    assert reply["status"] == "complete" and reply["duplicate"] is False
    assert reply["asset"] == str(MediaAsset.objects.get().id)
    assert reply["detected"].startswith("PNG image")


def test_a_big_original_goes_into_the_object_store_in_parts(bob, people, settings, media_store):
    if media_store != "s3":
        pytest.skip("parts are how the object store takes big files; the disk renames")
    settings.MEDIA_CHUNK_BYTES = 4 * 1024 * 1024
    settings.S3_MULTIPART_BYTES = 5 * 1024 * 1024  # the smallest part S3 allows
    data = samples.wav(seconds=180, rate=16000, channels=2)  # 11.5 MB: three parts
    reply = upload(bob, people.case, data, "long call.wav")
    assert reply.status_code == 200, reply.content
    asset = MediaAsset.objects.get(pk=reply.json()["asset"])
    store = stores.current()
    key = storage.original_key(asset.case_id, asset.id)
    head = store.client.head_object(Bucket=store.bucket, Key=store._key(key))
    assert head["ETag"].strip('"').endswith("-3")  # a multipart object's ETag counts its parts
    assert stored_original(asset) == data and asset.sha256 == sha256(data)
    assert files_on_disk() == [key]  # and the partial file on the web host is gone
