"""Two hosts that share nothing but TCP: the web host (web, PostgreSQL, Redis, the object
store) and a GPU host in its own network namespace running a real inference worker on the
tiny model. An answer about a video uploaded on the web host succeeds on the GPU host, and
its record names that host; an original changed in the store is refused there.

The GPU host gets its own MEDIA_ROOT and cache, and the web host's media folder is hidden
from it (tests/two_hosts.py): the video can only reach it from the object store.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.urls import reverse

from analysis.inference import registry
from analysis.models import Analysis, AuditEvent, MediaAsset
from gemma_web.celery import app as celery_app
from tests import engine_media as em
from tests.conftest import TINY_MMPROJ, TINY_TEXT
from tests.media_api import install_queue, rewrite_original, stored_original, upload
from tests.object_store import KEY_ID, SECRET, use_object_store
from tests.processes import stop
from tests.two_hosts import ROOT, GpuHost, why_not

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
WORKER_HOST = "gpu-host-b"
READY_WITHIN = 120  # seconds; only reached when something is wrong
ANSWER_WITHIN = 240


@pytest.fixture
def gpu_host():
    if reason := why_not():
        pytest.skip(reason)
    try:
        host = GpuHost.create()
    except OSError as exc:
        pytest.skip(f"cannot create a network namespace here: {exc}")
    try:
        yield host
    finally:
        host.remove()


@pytest.fixture
def web(request, settings, tmp_path):
    """The web host's settings: the object store, and its own media folders."""
    if connection.vendor != "postgresql":
        pytest.skip("the two-host test needs PostgreSQL (DATABASE_URL): SQLite is a shared file")
    use_object_store(settings, request.getfixturevalue("seaweedfs"), tmp_path)
    settings.MEDIA_ROOT = tmp_path / "web" / "media"
    settings.MEDIA_CACHE_DIR = tmp_path / "web" / "media-cache"
    settings.MEDIA_ROOT.mkdir(parents=True)
    return settings


def _loopback(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def worker_env(web, host: GpuHost, seaweedfs, folder) -> dict:
    """The GPU host's configuration: every service through the relay, its own folders."""
    database = connection.settings_dict
    redis = urlsplit(os.environ["REDIS_URL"])
    pg, broker, s3 = host.forward(
        f"{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}",
        _loopback(os.environ["REDIS_URL"]),
        _loopback(seaweedfs.endpoint),
    )
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    return base | {
        "DATABASE_URL": f"postgres://{database['USER']}:{database['PASSWORD'] or ''}"
        f"@{host.host_ip}:{pg}/{database['NAME']}",
        "REDIS_URL": f"redis://{host.host_ip}:{broker}{redis.path or '/0'}",
        "MEDIA_STORAGE": "s3", "S3_ENDPOINT_URL": f"http://{host.host_ip}:{s3}",
        "S3_BUCKET": web.S3_BUCKET, "S3_PREFIX": web.S3_PREFIX,
        "S3_ACCESS_KEY_ID": KEY_ID, "S3_SECRET_ACCESS_KEY": SECRET,
        "MEDIA_ROOT": str(folder / "media"), "MEDIA_CACHE_DIR": str(folder / "media-cache"),
        "GEMMA_VAR_DIR": str(folder / "var"), "SECRET_KEY": "two-hosts-test",
        "GEMMA_PREFIX_CACHE_DIR": str(folder / "prefix-cache"), "GEMMA_N_THREADS": "2",
        "DJANGO_SETTINGS_MODULE": "gemma_web.settings", "PYTHONUNBUFFERED": "1",
    }  # fmt: skip


@pytest.fixture
def inference_worker(web, gpu_host, seaweedfs, tmp_path):
    """A real Celery worker for the inference queue, on the GPU host."""
    folder = tmp_path / "gpu-host"
    folder.mkdir()
    env = worker_env(web, gpu_host, seaweedfs, folder)
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("inference")  # leftovers from other runs
    argv = [
        sys.executable, "-m", "celery", "-A", "gemma_web", "worker", "-Q", "inference",
        "--pool=solo", "-c", "1", "-n", "inference@%h", "--without-mingle",
        "--without-gossip", "-l", "INFO",
    ]  # fmt: skip
    log = folder / "worker.log"
    with log.open("wb") as out:
        command = gpu_host.command(WORKER_HOST, web.MEDIA_ROOT.parent, argv)
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        _wait_for(lambda: b" ready." in log.read_bytes(), READY_WITHIN, process, log)
        yield folder
    finally:
        stop(process)


def _wait_for(condition, within: float, process, log) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the GPU host's worker: {log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.2)


def ask(client, case, clip: MediaAsset, question: str) -> Analysis:
    reply = client.post(
        reverse("analysis-ask", args=[case.id]), {"question": question, "media": [clip.id]}
    )
    assert reply.status_code == 302
    analysis = Analysis.objects.filter(question=question).get()
    deadline = time.monotonic() + ANSWER_WITHIN
    while not analysis.is_finished and time.monotonic() < deadline:
        time.sleep(0.2)
        analysis.refresh_from_db()
    assert analysis.is_finished, f"still {analysis.status} after {ANSWER_WITHIN} s"
    return analysis


def test_an_answer_about_a_video_runs_on_the_other_host(
    client, people, web, inference_worker, monkeypatch, tmp_path
):
    registry.register(
        name="tiny-gemma4", gguf=str(TINY_TEXT), mmproj=str(TINY_MMPROJ), n_ctx=2048,
        n_threads=2, sampler={"max_tokens": 8},
    )  # fmt: skip
    queue = install_queue(monkeypatch)  # the web host's media worker runs here, in this test
    client.force_login(people.bob)
    data = em.mp4(tmp_path / "clip.mp4", seconds=2.0, audio=True).read_bytes()
    reply = upload(client, people.case, data, "clip.mp4")
    assert reply.status_code == 200, reply.content
    queue.run()
    clip = MediaAsset.objects.get(pk=reply.json()["asset"])
    assert clip.status == MediaAsset.Status.READY, clip.status_reason
    assert not (web.MEDIA_ROOT / "originals").exists()  # the original is in the store only

    analysis = ask(client, people.case, clip, "What happens in the clip?")
    assert analysis.status == Analysis.Status.SUCCEEDED, analysis.error
    assert analysis.worker == f"inference@{WORKER_HOST}"  # the record names the GPU host
    [used] = analysis.record["media"]
    assert (used["id"], used["sha256"]) == (str(clip.id), clip.sha256)
    # The GPU host fetched the video over TCP into its own cache, by its hash.
    assert (inference_worker / "media-cache" / clip.sha256).exists()

    rewrite_original(clip, stored_original(clip) + b"changed in the store")
    refused = ask(client, people.case, clip, "And now?")
    assert refused.status == Analysis.Status.FAILED
    assert refused.worker == f"inference@{WORKER_HOST}"
    assert "clip.mp4 changed since upload (SHA-256 mismatch)" in refused.error
    event = AuditEvent.objects.filter(action=AuditEvent.Action.MEDIA_HASH_MISMATCH).get()
    assert event.details["via"] == "analysis" and event.details["found"] != clip.sha256
