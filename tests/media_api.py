"""Helpers that drive the chunk API the way upload.js does, and look at what is on disk."""

from __future__ import annotations

import hashlib
import io
import json
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


def start(client, case, filename: str, size: int, sha256: str = ""):
    body = {"filename": filename, "size": size}
    if sha256:
        body["sha256"] = sha256
    return client.post(
        reverse("media-upload-create", args=[case.id]),
        json.dumps(body),
        content_type="application/json",
    )


def put(client, url: str, data: bytes, first: int, total: int, **headers):
    last = first + len(data) - 1
    return client.put(
        url,
        data,
        content_type="application/octet-stream",
        headers={"Content-Range": f"bytes {first}-{last}/{total}", **headers},
    )


def upload(client, case, data: bytes, filename: str = "evidence.bin", chunk: int | None = None):
    """The whole dance; returns the last response (its JSON says what became of the file)."""
    reply = start(client, case, filename, len(data))
    if reply.status_code != 201:
        return reply
    url = reply.json()["url"]
    chunk = chunk or settings.MEDIA_CHUNK_BYTES
    for first in range(0, len(data), chunk):
        reply = put(client, url, data[first : first + chunk], first, len(data))
        if reply.status_code != 200:
            return reply
    return reply


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
    done = uploads.receive(upload, io.BytesIO(data), f"bytes 0-{len(data) - 1}/{len(data)}")
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
