"""tus 1.0 headers and answers, one rule each (the Django view; the fast path answers alike)."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.urls import reverse

from analysis.media import storage
from analysis.models import MediaAsset, MediaUpload
from tests import media_samples as samples
from tests.media_api import TUS, b64, create, patch, sha256, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob(client, people, settings):
    settings.MEDIA_CHUNK_BYTES = 4096
    client.force_login(people.bob)
    return client


def test_options_says_what_the_server_speaks(client, people):
    reply = client.options(reverse("media-upload-create", args=[people.case.id]))
    assert reply.status_code == 204
    assert (reply["Tus-Version"], reply["Tus-Resumable"]) == ("1.0.0", "1.0.0")
    assert reply["Tus-Extension"] == "creation,termination,checksum"
    assert reply["Tus-Checksum-Algorithm"] == "sha1,sha256"


def test_creation_then_patches_then_head(bob, people):
    data = samples.wav(seconds=0.5)
    # Metadata it does not use (tus-js-client sends the type too) is no reason to refuse.
    metadata = f"filename {b64('call 7.wav')},filetype {b64('audio/wav')}"
    made = create(bob, people.case, len(data), **{"Upload-Metadata": metadata})
    assert made.status_code == 201 and made["Tus-Resumable"] == "1.0.0"
    url = made["Location"]
    assert url.startswith("http://testserver/cases/")
    for offset in range(0, len(data), 4096):
        reply = patch(bob, url, data[offset : offset + 4096], offset)
        assert reply.status_code == 204
        assert reply["Upload-Offset"] == str(min(len(data), offset + 4096))
    head = bob.head(url, headers=TUS)
    assert (head["Upload-Offset"], head["Upload-Length"]) == (str(len(data)),) * 2
    assert "no-store" in head["Cache-Control"]
    asset = MediaAsset.objects.get()
    assert (asset.filename, asset.sha256, asset.kind) == ("call 7.wav", sha256(data), "audio")


def test_a_patch_at_the_wrong_offset_is_a_conflict(bob, people):
    url = create(bob, people.case, 8000)["Location"]
    reply = patch(bob, url, b"x" * 100, 100)
    assert reply.status_code == 409 and reply["Upload-Offset"] == "0"


def test_a_body_that_fails_its_checksum_is_not_appended(bob, people):
    data = samples.wav(seconds=0.2)
    url = create(bob, people.case, len(data))["Location"]
    wrong = "sha256 " + b64(hashlib.sha256(b"other bytes").digest())
    reply = patch(bob, url, data[:4096], 0, **{"Upload-Checksum": wrong})
    assert reply.status_code == 460 and reply["Upload-Offset"] == "0"
    upload_id = MediaUpload.objects.get().id
    assert storage.partial_path(upload_id).stat().st_size == 0
    right = "sha1 " + b64(hashlib.sha1(data[:4096]).digest())  # noqa: S324 - tus's checksum
    assert patch(bob, url, data[:4096], 0, **{"Upload-Checksum": right}).status_code == 204


def test_an_unknown_checksum_algorithm_is_refused(bob, people):
    url = create(bob, people.case, 100)["Location"]
    reply = patch(bob, url, b"x" * 100, 0, **{"Upload-Checksum": "crc32 AAAA"})
    assert reply.status_code == 400


def test_another_protocol_version_is_refused(bob, people):
    reply = create(bob, people.case, 100, **{"Tus-Resumable": "0.2.2"})
    assert reply.status_code == 412 and reply["Tus-Version"] == "1.0.0"
    assert not MediaUpload.objects.exists()


@pytest.mark.parametrize(
    "body, content_type",
    [
        (json.dumps({"filename": "a.png", "size": 10}), "application/json"),
        ("filename=a.png&size=10", "application/x-www-form-urlencoded"),
    ],
)
def test_a_post_that_does_not_speak_tus_is_told_what_to_send(bob, people, body, content_type):
    url = reverse("media-upload-create", args=[people.case.id])
    reply = bob.post(url, body, content_type=content_type)
    assert reply.status_code == 412 and reply["Tus-Version"] == "1.0.0"
    message = reply.json()["error"]
    for needed in ("tus 1.0.0", "Tus-Resumable: 1.0.0", "Upload-Length", "Upload-Metadata"):
        assert needed in message, message
    assert not MediaUpload.objects.exists()


def test_a_patch_that_does_not_speak_tus_is_told_what_to_send(bob, people):
    url = create(bob, people.case, 100)["Location"]
    reply = bob.generic(
        "PATCH", url, b"x" * 100, content_type="application/offset+octet-stream",
        headers={"Upload-Offset": "0"},
    )  # fmt: skip
    assert reply.status_code == 412 and reply["Tus-Version"] == "1.0.0"
    assert "Tus-Resumable: 1.0.0, Upload-Offset" in reply.json()["error"]
    assert bob.head(url)["Upload-Offset"] == "0"


def test_a_patch_must_be_an_offset_stream(bob, people):
    url = create(bob, people.case, 100)["Location"]
    reply = bob.generic(
        "PATCH", url, b"x" * 100, content_type="application/octet-stream",
        headers={**TUS, "Upload-Offset": "0"},
    )  # fmt: skip
    assert reply.status_code == 415


def test_termination_removes_the_upload(bob, people):
    data = samples.wav(seconds=0.2)
    url = create(bob, people.case, len(data))["Location"]
    patch(bob, url, data[:4096], 0)
    assert bob.delete(url, headers=TUS).status_code == 204
    assert not MediaUpload.objects.exists()
    assert bob.head(url, headers=TUS).status_code == 404


def test_bytes_already_in_the_case_make_a_finished_session(bob, people):
    data = samples.image("png")
    first = upload(bob, people.case, data, "one.png").json()
    made = create(bob, people.case, len(data), "two.png", **{
        "Upload-Metadata": f"filename {b64('two.png')},sha256 {b64(sha256(data))}"
    })  # fmt: skip
    assert made.status_code == 201
    head = bob.head(made["Location"], headers=TUS)
    assert head["Upload-Offset"] == head["Upload-Length"] == str(len(data))  # nothing to send
    assert bob.get(made["Location"]).json()["asset"] == first["asset"]
    assert MediaAsset.objects.count() == 1


def test_a_viewer_may_not_create_an_upload(client, people):
    client.force_login(people.carol)
    assert create(client, people.case, 100).status_code == 403
