"""Workers on the object store read local copies: fetched once, verified, size-bounded (LRU)."""

from __future__ import annotations

import io
import os
import shutil
import threading

import pytest

from analysis.media import integrity, processing, storage, stores, uploads
from analysis.media.stores import cache
from analysis.models import AuditEvent, MediaAsset
from tests import media_samples as samples
from tests.media_api import make_asset, rewrite_original, stored_original
from tests.object_store import use_object_store

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def on_s3(settings, seaweedfs, tmp_path):
    use_object_store(settings, seaweedfs, tmp_path)


@pytest.fixture
def gets(monkeypatch):
    """How many times the object store was read (the store itself is real)."""
    store = stores.current()
    calls = []
    real = store.open

    def counted(key, start=0, end=None):
        calls.append(key)
        return real(key, start, end)

    monkeypatch.setattr(store, "open", counted)
    return calls


def fresh_cache() -> cache.Cache:
    storage.release_local()
    folder = cache.current().folder
    shutil.rmtree(folder, ignore_errors=True)
    return cache.current()


def entries(folder) -> list[str]:
    return sorted(path.name for _, _, path in cache.Cache(folder, 0).entries())


def text_item(people, number: int, size: int = 4000) -> MediaAsset:
    data = (f"statement {number}\n" * size)[:size].encode()
    return make_asset(people.case, people.bob, data, f"statement-{number}.txt")


def test_a_worker_fetches_an_original_once_and_verifies_it(people, gets):
    asset = make_asset(people.case, people.bob, samples.image("png"), "scene.png")
    fresh_cache()
    gets.clear()
    first = integrity.local_copy(asset, via="analysis", rehash=False)
    again = integrity.local_copy(asset, via="analysis", rehash=False)
    assert first == again and first.name == asset.sha256  # kept by hash
    assert len(gets) == 1  # the second read is served from the cache
    assert first.read_bytes() == stored_original(asset)
    assert storage.original_path(asset.case_id, asset.id).exists() is False  # no disk store


def test_the_cache_keeps_to_its_bound_least_recently_used_first(people, settings):
    a, b, c = (text_item(people, n) for n in (1, 2, 3))
    settings.MEDIA_CACHE_BYTES = 2 * 4000  # room for two
    folder = fresh_cache().folder
    for asset in (a, b, a, c):  # a is used again after b: b is the least recently used
        integrity.local_copy(asset, via="analysis", rehash=False)
        storage.release_local()  # each job ends
    assert entries(folder) == sorted([a.sha256, c.sha256])


def test_an_entry_in_use_is_not_evicted(people, settings):
    a, b = text_item(people, 1), text_item(people, 2)
    settings.MEDIA_CACHE_BYTES = 4000  # room for one
    folder = fresh_cache().folder
    held = integrity.local_copy(a, via="analysis", rehash=False)  # a job still reads it
    integrity.local_copy(b, via="analysis", rehash=False)
    assert held.exists()  # over the bound while both are pinned
    storage.release_local()
    cache.current().evict()
    assert entries(folder) == [b.sha256]  # the older one goes once free


def test_a_tampered_object_is_refused_recorded_and_not_kept(people):
    asset = make_asset(people.case, people.bob, samples.image("png"), "scene.png")
    folder = fresh_cache().folder
    rewrite_original(asset, stored_original(asset) + b"changed in the store")
    assert integrity.local_copy(asset, via="analysis") is None
    asset.refresh_from_db()
    assert asset.hash_mismatch is True
    event = AuditEvent.objects.get(action=AuditEvent.Action.MEDIA_HASH_MISMATCH)
    assert event.details["via"] == "analysis" and event.details["found"] != asset.sha256
    assert list(folder.iterdir()) == []  # neither the bad copy nor a half-written download


def test_a_spoiled_local_copy_is_fetched_again(people, gets):
    asset = make_asset(people.case, people.bob, samples.image("png"), "scene.png")
    fresh_cache()
    path = integrity.local_copy(asset, via="analysis", rehash=False)
    storage.release_local()
    os.chmod(path, 0o600)
    path.write_bytes(b"the worker's disk went bad")
    gets.clear()
    again = integrity.local_copy(asset, via="analysis", rehash=True)
    assert len(gets) == 1
    assert again.read_bytes() == stored_original(asset)
    asset.refresh_from_db()
    assert asset.hash_mismatch is False  # the evidence in the store is intact


def test_the_media_worker_refuses_an_original_changed_in_the_store(people):
    data = samples.image("png")
    upload = uploads.start(people.case, people.bob, filename="scene.png", size=len(data))
    done = uploads.receive(upload, io.BytesIO(data), 0, len(data) - 1)
    fresh_cache()
    rewrite_original(done.asset, data + b"!")
    asset = processing.process_asset(done.asset.id)
    assert asset.status == MediaAsset.Status.FAILED
    assert "SHA-256 mismatch" in asset.status_reason and asset.hash_mismatch is True
    event = AuditEvent.objects.get(action=AuditEvent.Action.MEDIA_HASH_MISMATCH)
    assert event.details["via"] == "media-check"
    assert storage.item_files(asset.case_id, asset.id) == [  # nothing derived from it
        storage.original_key(asset.case_id, asset.id)
    ]


def test_one_job_ending_does_not_unpin_another_jobs_copy(people, settings):
    """Jobs answered at once in one worker (a thread each) pin their copies separately."""
    a, b = text_item(people, 1), text_item(people, 2)
    settings.MEDIA_CACHE_BYTES = 4000  # room for one
    folder = fresh_cache().folder
    other_job = threading.Thread(
        target=storage.local_original, args=(a.case_id, a.id, a.sha256), kwargs={"rehash": False}
    )
    other_job.start()
    other_job.join()  # its thread still holds a, as a running job would
    integrity.local_copy(b, via="analysis", rehash=False)
    storage.release_local()  # this job ends
    cache.current().evict()
    assert entries(folder) == [a.sha256]  # b went; a stays pinned by the other job
