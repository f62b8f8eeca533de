"""Helpers that drive the tus upload API the way upload.js does, and look at what is on disk."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from pathlib import Path

from django.conf import settings
from django.urls import reverse

from analysis.media import processing, storage, stores, uploads
from analysis.models import MediaAsset, MediaUpload


class Queue:
    """Stands in for the media queue: records what was enqueued, runs it on demand."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def delay(self, asset_id: str) -> None:
        self.ids.append(asset_id)

    def run(self) -> None:
        while self.ids:
            processing.process_asset(self.ids.pop(0))


def install_queue(monkeypatch) -> Queue:
    queue = Queue()
    monkeypatch.setattr("analysis.media.uploads.send_to_queue", queue.delay)
    return queue


TUS = {"Tus-Resumable": "1.0.0"}


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def creation_headers(size: int, name: str = "evidence.bin", sha256: str = "") -> dict:
    """A tus creation's: Upload-Length, and the file's name (and hash, if known) as metadata."""
    metadata = f"filename {b64(name)}" + (f",sha256 {b64(sha256)}" if sha256 else "")
    return {**TUS, "Upload-Length": str(size), "Upload-Metadata": metadata}


def create(client, case, size: int, name: str = "evidence.bin", *, sha256: str = "", **headers):
    """tus creation; `headers` add to or replace those of `creation_headers`."""
    headers = {**creation_headers(size, name, sha256), **headers}
    return client.post(reverse("media-upload-create", args=[case.id]), headers=headers)


def patch(client, url: str, data: bytes, offset: int, **headers):
    """One tus PATCH: `data` from `offset` on."""
    headers = {**TUS, "Upload-Offset": str(offset), **headers}
    return client.generic(
        "PATCH", url, data, content_type="application/offset+octet-stream", headers=headers
    )


def upload(client, case, data: bytes, filename: str = "evidence.bin", chunk: int | None = None):
    """The whole tus dance as the case page does it: creation, PATCHes from the offset the
    server confirmed, then GET of the upload (its JSON says what became of the file). A
    refusal on the way is returned as it came."""
    reply = create(client, case, len(data), filename)
    if reply.status_code != 201:
        return reply
    url = reply["Location"]
    chunk = chunk or settings.MEDIA_CHUNK_BYTES
    offset = int(reply["Upload-Offset"])  # all of it when the bytes are already here
    while offset < len(data):
        reply = patch(client, url, data[offset : offset + chunk], offset)
        if reply.status_code != 204:
            return reply
        offset = int(reply["Upload-Offset"])
    return client.get(url)


def upload_asset(client, case, data: bytes, filename: str = "evidence.bin") -> MediaAsset:
    reply = upload(client, case, data, filename)
    assert reply.status_code == 200, reply.content
    return MediaAsset.objects.get(pk=reply.json()["asset"])


def checked(reply) -> MediaAsset:
    """The item an upload made, once the media task has checked it (as the worker would)."""
    assert reply.status_code == 200, reply.content
    asset_id = reply.json()["asset"]
    assert reply.json()["asset_status"] == MediaAsset.Status.CHECKING
    processing.process_asset(asset_id)
    return MediaAsset.objects.get(pk=asset_id)


def assert_rejected(asset: MediaAsset, *words: str) -> None:
    """Refused by the media task: the reason says why, and none of its files is left."""
    assert asset.status == MediaAsset.Status.REJECTED, (asset.status, asset.status_reason)
    for word in words:
        assert word in asset.status_reason, asset.status_reason
    assert files_on_disk() == []


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_on_disk() -> list[str]:
    """Every file under MEDIA_ROOT and every key in the object store, relative, sorted."""
    root = Path(settings.MEDIA_ROOT)
    local = (
        [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()] if root.exists() else []
    )
    stored = [] if stores.current().local else storage.stored_keys()
    return sorted(local + stored)


# --- the stored bytes, on either store --------------------------------------------------------


def stored_original(asset: MediaAsset) -> bytes:
    with storage.open_original(asset.case_id, asset.id) as reader:
        return reader.read()


def stored_derived(asset: MediaAsset, name: str) -> bytes:
    return storage.read_derived(asset.id, name)


def rewrite_original(asset: MediaAsset, data: bytes) -> None:
    """Someone with write access to the store changes the original behind the site's back
    (on a versioned bucket: a new version; the locked one stays, hidden behind it)."""
    store = stores.current()
    key = storage.original_key(asset.case_id, asset.id)
    if store.local:
        path = store.local_path(key)
        os.chmod(path, 0o640)
        path.write_bytes(data)
    else:
        store.client.put_object(Bucket=store.bucket, Key=store._key(key), Body=data)


def tamper(asset: MediaAsset) -> None:
    rewrite_original(asset, stored_original(asset) + b"!")


def drop_original(asset: MediaAsset) -> None:
    storage.remove_original(asset.case_id, asset.id)


def assert_nothing_stored() -> None:
    assert not MediaAsset.objects.exists()
    assert files_on_disk() == []


# --- for the access matrix (tests/test_case_access.py) ------------------------------------------


def make_asset(case, user, data: bytes, filename: str = "evidence.bin") -> MediaAsset:
    """Through the real upload path (one chunk) and the real media task, without HTTP."""
    upload = uploads.start(case, user, filename=filename, size=len(data))
    done = uploads.receive(upload, io.BytesIO(data), 0, len(data) - 1)
    processing.process_asset(done.asset.id)
    return MediaAsset.objects.get(pk=done.asset.id)


def media_world(case, owner) -> None:
    """One processed image and one open upload, both alice's."""
    from tests.media_samples import image

    make_asset(case, owner, image("png"), "scene.png")
    uploads.start(case, owner, filename="big.mp4", size=1000)


def media_kwargs(name: str) -> dict:
    if name == "media-upload-create":
        return {}
    if name == "media-upload":
        return {"upload_id": MediaUpload.objects.filter(status="active").first().id}
    asset = MediaAsset.objects.exclude(status="deleted").first()
    kwargs = {"asset_id": asset.id}
    if name == "media-derived":
        kwargs["name"] = asset.derived["thumbnail"]
    return kwargs
