"""Drive a real `manage.py serve` as a reviewer would: sign in, ask, watch the socket.

Used by tests/test_chaos.py and bench/chaos.py. The site runs in its own folder on free ports
with the embedded Valkey and a SQLite file (the defaults of `scripts/run`), with the recovery
limits shrunk through settings' environment variables so a test waits seconds, not minutes.
The driver reads the site's database file directly (read-only queries) to compare what a
socket showed with what was saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY_TEXT = ROOT / "tests" / "fixtures" / "models" / "tiny-gemma4-f16.gguf"
PASSWORD = "Chaos-test-password-2026"
# Recovery limits for the test: a job whose worker went silent for STALE seconds is queued
# again at the next sweep. Everything else keeps the site's defaults.
FAST_RECOVERY = {
    "ANALYSIS_HEARTBEAT_INTERVAL": "0.5",
    "ANALYSIS_STALE_AFTER": "3",
    "ANALYSIS_SWEEP_INTERVAL": "1",
    "ANALYSIS_REDISPATCH_AFTER": "30",
}
FINISHED = ("succeeded", "failed", "cancelled")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Site:
    def __init__(self, folder: Path, env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.port, self.valkey_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        self.env = base | {
            "GEMMA_VAR_DIR": str(folder),
            "GEMMA_MODEL_PATH": str(TINY_TEXT),
            "GEMMA_ADMIN_PASSWORD": PASSWORD,
            "NO_COLOR": "1",
            **FAST_RECOVERY,
            **(env or {}),
        }
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self._cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self._cookies)
        )

    # --- the process ----------------------------------------------------------------------

    def start(self, timeout: float = 180) -> None:
        manage = [sys.executable, str(ROOT / "manage.py")]
        for command in (["migrate", "-v0"], ["collectstatic", "--noinput", "-v0"]):
            subprocess.run([*manage, *command], cwd=ROOT, env=self.env, check=True, timeout=180)
        argv = [*manage, "serve", "--port", str(self.port), "--valkey-port", str(self.valkey_port)]
        # Generous crash limits: the chaos loop kills children on purpose.
        argv += ["--crash-limit", "50", "--crash-window", "60", "--stop-timeout", "10"]
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()
        ready = ["Gemma Web is up", r"inference +\| .*ready", r"worker +\| .*ready"]
        if not self.wait_for(ready, timeout):
            raise RuntimeError("site did not start:\n" + "".join(self.lines[-80:]))

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, patterns: list[str], timeout: float, since: int = 0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = "".join(self.lines[since:])
            if all(re.search(p, text) for p in patterns):
                return True
            if self.proc is not None and self.proc.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def pids(self) -> dict[str, int]:
        """Each child's current pid, from the supervisor's "started" lines."""
        found: dict[str, int] = {}
        for line in self.lines:
            if m := re.search(r"started (\S+) \(pid (\d+)\)", line):
                found[m.group(1)] = int(m.group(2))
        return found

    def all_pids(self) -> set[int]:
        return {
            int(m.group(1))
            for line in self.lines
            if (m := re.search(r"started \S+ \(pid (\d+)\)", line))
        }

    def kill(self, child: str, sig: signal.Signals = signal.SIGKILL) -> int:
        pid = self.pids()[child]
        os.kill(pid, sig)
        return pid

    def stop(self, timeout: float = 60) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for pid in self.all_pids():  # the supervisor kills its children; make sure of it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        return self.proc.returncode

    # --- HTTP, as a reviewer's browser --------------------------------------------------------

    def get(self, path: str, timeout: float = 5) -> tuple[int, str]:
        try:
            with self._opener.open(self.url + path, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def post(self, path: str, data: dict, headers: dict | None = None) -> tuple[int, str, str]:
        token = next((c.value for c in self._cookies if c.name == "csrftoken"), "")
        body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": token}).encode()
        headers = {"Referer": self.url + path, **(headers or {})}
        request = urllib.request.Request(self.url + path, body, headers=headers)  # noqa: S310 - http on loopback
        try:
            with self._opener.open(request, timeout=30) as response:
                return response.status, response.geturl(), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, "", exc.read().decode(errors="replace")

    def answers(self) -> bool:
        """The site is up: the sign-in page renders."""
        try:
            return self.get("/login/", timeout=2)[0] == 200
        except OSError:
            return False

    def sign_in(self) -> None:
        self.get("/login/")
        status, url, _ = self.post("/login/", {"username": "admin", "password": PASSWORD})
        assert status == 200 and "/login/" not in url, "sign-in failed"

    def create_case(self, title: str = "Chaos") -> str:
        self.get("/cases/new/")
        _, url, _ = self.post("/cases/new/", {"title": title, "reference": ""})
        return re.search(r"/cases/([0-9a-f-]{36})/", url).group(1)

    def ask(self, case_id: str, question: str) -> str:
        status, _, html = self.post(
            f"/cases/{case_id}/ask/", {"question": question}, {"HX-Request": "true"}
        )
        assert status == 200, html[:500]
        return re.search(r'data-analysis="([0-9a-f-]{36})"', html).group(1)

    def ask_and_catch_streaming(self, case_id: str, question: str) -> tuple[str, bool]:
        """Ask, and return as soon as the answer streams (its first token batch is logged):
        its id, and False if it had finished already (the tiny model's answers often last well
        under a second, so a caller that must interrupt one asks again)."""
        analysis_id = self.ask(case_id, question)

        def streaming() -> bool:
            return any(
                r["status"] != "queued" and r["chunks"] for r in self.progress([analysis_id])
            )

        wait(streaming, 120, step=0.01)
        row = self.progress([analysis_id])
        return analysis_id, bool(row) and row[0]["status"] == "running"

    def session_cookie(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self._cookies)

    # --- the database, read-only ------------------------------------------------------------

    def _query(self, sql: str) -> list[dict]:
        path = self.folder / "gemma_web.sqlite3"
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(sql).fetchall()]
        finally:
            db.close()

    def rows(self) -> dict[str, dict]:
        """Every analysis: status, saved answer, error and attempts, by id."""
        sql = "SELECT id, status, answer, error, attempts FROM analysis_analysis"
        return {_uuid(row["id"]): row for row in self._query(sql)}

    def progress(self, ids: list[str]) -> list[dict]:
        """Status and number of streamed chunks of some analyses."""
        sql = (
            "SELECT a.id, a.status, COUNT(c.id) AS chunks FROM analysis_analysis a "
            "LEFT JOIN analysis_analysischunk c ON c.analysis_id = a.id GROUP BY a.id"
        )
        wanted = set(ids)
        return [row for row in self._query(sql) if _uuid(row["id"]) in wanted]

    def last_chunks(self) -> dict[str, int]:
        """The newest token-log row of each analysis (ids grow: a new batch, even of a retry)."""
        sql = "SELECT analysis_id, MAX(id) AS last FROM analysis_analysischunk GROUP BY analysis_id"
        return {_uuid(row["analysis_id"]): row["last"] for row in self._query(sql)}

    def leftovers(self) -> list[str]:
        """Live processes in any of the children's sessions (there must be none)."""
        return sessions_alive(self.all_pids())


@contextlib.contextmanager
def running_site(folder: Path, env: dict[str, str] | None = None) -> Iterator[Site]:
    """A started site with its admin signed in; afterwards stopped, and it must have exited
    cleanly with no child left behind."""
    site = Site(folder, env)
    try:
        site.start()
        site.sign_in()
        yield site
    finally:
        code = site.stop()
        assert site.leftovers() == [], "children left behind"
        assert code == 0, "".join(site.lines[-60:])


def sessions_alive(sids: set[int]) -> list[str]:
    """Live (non-zombie) processes whose session is one of `sids`."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, _pgrp, session = stat.rsplit(")", 1)[1].split()[:4]
        if int(session) in sids and state != "Z":
            alive.append(f"{entry.name}: {stat[:80]}")
    return alive


def wait(condition, limit: float, step: float = 0.2) -> bool:
    """Poll `condition` until it holds or `limit` seconds pass (a bound, never asserted on)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def _uuid(value: str) -> str:
    value = value.replace("-", "")
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"


class Watcher:
    """A case page's socket, in a thread: the protocol of static/js/case.js, reconnecting."""

    def __init__(self, site: Site, case_id: str) -> None:
        self.uri = f"ws://127.0.0.1:{site.port}/ws/cases/{case_id}/"
        self.headers = {"Cookie": site.session_cookie(), "Origin": site.url}
        self.text: dict[str, str] = {}
        self.seq: dict[str, int] = {}
        self.attempt: dict[str, int] = {}
        self.status: dict[str, str] = {}
        self.caught_up: dict[str, bool] = {}  # asked the log once more after the final status
        self.labels: set[str] = set()
        # What the socket showed of each answer after each message: (time.monotonic(),
        # attempt, seq, status), so a caller can tell when it moved on after some moment.
        self.heard: dict[str, list[tuple[float, int, int, str]]] = {}
        self.reconnects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def follow(self, analysis_id: str) -> None:
        self.text.setdefault(analysis_id, "")
        self.seq.setdefault(analysis_id, 0)
        self.attempt.setdefault(analysis_id, 0)
        self.status.setdefault(analysis_id, "queued")

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    async def _run(self) -> None:
        import websockets

        delay = 0.5
        while not self._stop.is_set():
            try:
                async with websockets.connect(
                    self.uri, additional_headers=self.headers, open_timeout=5
                ) as ws:
                    delay = 0.5
                    await self._session(ws)
            except (TimeoutError, OSError, websockets.WebSocketException):
                pass
            self.reconnects += 1
            # The page's backoff: 0.5 s doubling to 2 s, with its jitter.
            await asyncio.sleep(delay * random.uniform(0.75, 1.25))  # noqa: S311
            delay = min(delay * 2, 2.0)

    async def _session(self, ws) -> None:
        await self._resume_all(ws)
        last_resume = time.monotonic()
        while not self._stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except TimeoutError:
                raw = None
            if raw is not None:
                await self._on(ws, json.loads(raw))
            if time.monotonic() - last_resume > 1.5:  # as the page's quiet-card check
                await self._resume_all(ws)
                last_resume = time.monotonic()

    async def _resume_all(self, ws) -> None:
        for analysis_id in list(self.text):
            if self.status[analysis_id] not in FINISHED:
                await self._resume(ws, analysis_id)

    async def _resume(self, ws, analysis_id: str) -> None:
        message = {
            "type": "resume",
            "analysis": analysis_id,
            "attempt": self.attempt[analysis_id],
            "after": self.seq[analysis_id],
        }
        await ws.send(json.dumps(message))

    async def _on(self, ws, msg: dict) -> None:
        analysis_id = msg.get("analysis")
        if analysis_id not in self.text:
            return
        attempt = msg.get("attempt")
        if attempt is not None and attempt != self.attempt[analysis_id]:
            if attempt < self.attempt[analysis_id]:
                return
            self.attempt[analysis_id], self.seq[analysis_id], self.text[analysis_id] = (
                attempt,
                0,
                "",
            )
        if msg["type"] == "status":
            if msg["status"] in FINISHED and not self.caught_up.get(analysis_id):
                # As the page fetches the final card: batches lost on the way (a broker
                # restart) come from the log, then this final status once more.
                self.caught_up[analysis_id] = True
                await self._resume(ws, analysis_id)
                return
            self.status[analysis_id] = msg["status"]
            self.labels.add(msg.get("label", ""))
        elif msg["type"] == "tokens":
            if msg["seq"] == self.seq[analysis_id] + 1:
                self.text[analysis_id] += msg["text"]
                self.seq[analysis_id] = msg["seq"]
            elif msg["seq"] > self.seq[analysis_id] + 1:
                await self._resume(ws, analysis_id)
        shown = (self.attempt[analysis_id], self.seq[analysis_id], self.status[analysis_id])
        self.heard.setdefault(analysis_id, []).append((time.monotonic(), *shown))
