"""Uploads over tus: create, PATCH in order, resume from the confirmed offset, finish once."""

from __future__ import annotations

import io
import os
import stat

import pytest

from analysis.media import storage, stores, uploads
from analysis.models import AuditEvent, Case, MediaAsset, MediaUpload
from tests import media_samples as samples
from tests.media_api import (
    TUS,
    create,
    files_on_disk,
    install_queue,
    patch,
    sha256,
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


def cut_patch(client, url: str, data: bytes, offset: int, announced: int):
    """A PATCH whose connection dropped: it announced `announced` bytes, `data` arrived."""
    headers = {
        **TUS, "Upload-Offset": str(offset), "Content-Length": str(announced),
        "Content-Type": "application/offset+octet-stream",
    }  # fmt: skip
    return client.generic("PATCH", url, headers=headers, **{"wsgi.input": io.BytesIO(data)})


def test_the_confirmed_offset_can_be_asked_for(bob, people):
    data = samples.wav(seconds=0.2)
    url = create(bob, people.case, len(data), "a.wav")["Location"]
    patch(bob, url, data[:1024], 0)
    reply = bob.get(url)
    assert reply.json()["offset"] == 1024
    assert reply["Upload-Offset"] == "1024"
    assert bob.head(url)["Upload-Offset"] == "1024"


def test_a_dropped_chunk_leaves_nothing_and_the_upload_resumes(bob, people):
    data = samples.wav(seconds=0.3)
    total = len(data)
    url = create(bob, people.case, total, "a.wav")["Location"]
    assert patch(bob, url, data[:1024], 0).status_code == 204
    # The connection drops half-way through the second chunk: fewer bytes than announced.
    cut = cut_patch(bob, url, data[1024:1500], 1024, announced=1024)
    assert (cut.status_code, cut["Upload-Offset"]) == (400, "1024")
    assert "send it again" in cut.json()["error"]
    assert bob.head(url)["Upload-Offset"] == "1024"
    assert storage.partial_path(cut.json()["upload"]).stat().st_size == 1024
    uploads.HASHERS.drop(cut.json()["upload"])  # as if it resumed in another process
    for first in range(1024, total, 1024):
        assert patch(bob, url, data[first : first + 1024], first).status_code == 204
    assert bob.get(url).json()["status"] == "complete"
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
    first = upload(bob, people.case, data, "one.png").json()
    made = create(bob, people.case, len(data), "again.png", sha256=sha256(data))
    assert made.status_code == 201
    assert made["Upload-Offset"] == made["Upload-Length"] == str(len(data))  # nothing to send
    again = bob.get(made["Location"]).json()
    assert (again["duplicate"], again["asset"]) == (True, first["asset"])
    assert MediaUpload.objects.get(filename="again.png").status == MediaUpload.Status.COMPLETE
    assert len(files_on_disk()) == 1  # no partial file was even opened


def test_the_same_bytes_in_another_case_are_stored_again(bob, people):
    other = Case.create_with_owner(user=people.bob, title="Other")
    data = samples.image("png")
    upload(bob, people.case, data, "a.png")
    assert upload(bob, other, data, "a.png").json()["duplicate"] is False
    assert MediaAsset.objects.count() == 2


def test_bytes_that_differ_from_the_clients_hash_are_refused(bob, people):
    data = samples.image("png")
    url = create(bob, people.case, len(data), "a.png", sha256="0" * 64)["Location"]
    reply = patch(bob, url, data, 0)
    assert reply.status_code == 422
    assert "SHA-256 mismatch" in reply.json()["error"]
    assert not MediaAsset.objects.exists()
    assert files_on_disk() == []


def test_nobody_else_may_write_into_my_upload(client, people):
    client.force_login(people.bob)
    url = create(client, people.case, 100, "a.png")["Location"]
    client.force_login(people.alice)
    assert patch(client, url, b"x" * 100, 0).status_code == 404


def test_an_upload_can_be_cancelled(bob, people):
    data = samples.wav(seconds=0.2)
    url = create(bob, people.case, len(data), "a.wav")["Location"]
    patch(bob, url, data[:1024], 0)
    assert bob.delete(url).status_code == 204
    assert not MediaUpload.objects.exists()
    assert files_on_disk() == []


def test_a_closed_case_takes_no_uploads(bob, people):
    people.case.transition("close")
    assert create(bob, people.case, 10, "a.png").status_code == 403


def test_the_last_chunk_sent_again_gets_the_same_answer(bob, people):
    data = samples.image("png")
    url = create(bob, people.case, len(data), "a.png")["Location"]
    assert patch(bob, url, data, 0).status_code == 204
    first = bob.get(url).json()
    again = patch(bob, url, data, 0)  # its reply was lost: the client sends it again
    assert (again.status_code, again["Upload-Offset"]) == (204, str(len(data)))
    assert bob.get(url).json()["asset"] == first["asset"]
    assert MediaAsset.objects.count() == 1


def test_a_finished_session_says_what_the_file_became(bob, people):
    data = samples.image("png")
    url = create(bob, people.case, len(data), "a.png")["Location"]
    patch(bob, url, data, 0)
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
