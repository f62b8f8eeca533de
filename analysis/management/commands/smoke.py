"""Smoke client: drive a running site end to end, as a browser would, and watch the answer.

    python manage.py smoke --url http://127.0.0.1:8000/ [--username admin] [--question "..."]

Signs in through the login form, creates a case, opens the case's WebSocket, asks a question
and prints the tokens as they stream. Exit status: 0 when the analysis succeeded, 1 when it
failed or was cancelled, 2 on a timeout, 3 when the site could not be driven (login, HTTP).
It talks to the site only over HTTP and WebSocket, so it works against any deployment.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urljoin, urlsplit
from urllib.request import HTTPCookieProcessor, Request, build_opener

from django.core.management.base import BaseCommand, CommandParser
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import ClientConnection, connect

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken"\s+value="([^"]+)"')
CASE_PATH = re.compile(r"/cases/([0-9a-f-]{36})/?$")
FINAL = {"succeeded": 0, "failed": 1, "cancelled": 1}


class SmokeError(Exception):
    """The site could not be driven (as opposed to: the analysis failed)."""


class Browser:
    """Just enough of a browser: a cookie jar, CSRF tokens and Referer headers."""

    def __init__(self, base: str) -> None:
        if urlsplit(base).scheme not in ("http", "https"):
            raise SmokeError(f"--url must be http(s)://..., not {base!r}")
        self.base = base if base.endswith("/") else base + "/"
        self.cookies = CookieJar()
        self.opener = build_opener(HTTPCookieProcessor(self.cookies))

    def get(self, path: str) -> tuple[str, str]:
        return self._open(Request(urljoin(self.base, path)))  # noqa: S310 (http(s) only)

    def post(self, path: str, data: dict[str, str]) -> tuple[str, str]:
        fields = {**data, "csrfmiddlewaretoken": self.cookie("csrftoken")}
        url = urljoin(self.base, path)
        # Django checks Referer on HTTPS posts; the header costs nothing over HTTP.
        headers = {"Referer": url, "X-CSRFToken": fields["csrfmiddlewaretoken"]}
        body = urlencode(fields).encode()
        return self._open(Request(url, body, headers, method="POST"))  # noqa: S310

    def cookie(self, name: str) -> str:
        return next((c.value or "" for c in self.cookies if c.name == name), "")

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.cookies)

    def _open(self, request: Request) -> tuple[str, str]:
        """(final URL after redirects, body)."""
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.geturl(), response.read().decode(errors="replace")
        except HTTPError as exc:
            raise SmokeError(f"{request.get_method()} {request.full_url}: HTTP {exc.code}") from exc
        except URLError as exc:
            raise SmokeError(f"{request.full_url}: {exc.reason}") from exc


def sign_in(browser: Browser, username: str, password: str) -> None:
    _, page = browser.get("login/")
    if not browser.cookie("csrftoken") or not CSRF_INPUT.search(page):
        raise SmokeError("the login page has no CSRF token: is this a Gemma Web site?")
    final, _ = browser.post("login/", {"username": username, "password": password})
    if urlsplit(final).path.rstrip("/").endswith("/login") or not browser.cookie("sessionid"):
        raise SmokeError(f"sign-in as {username!r} failed (wrong password?)")


def create_case(browser: Browser, title: str) -> str:
    final, _ = browser.post("cases/new/", {"title": title})
    match = CASE_PATH.search(urlsplit(final).path)
    if not match:
        raise SmokeError(f"creating a case did not lead to a case page (ended at {final})")
    return match.group(1)


@dataclass
class Stream:
    """What has arrived for one analysis: resumable by sequence number."""

    analysis: str | None = None
    last_seq: int = -1
    messages: int = 0
    chars: int = 0
    status: str = "queued"
    error: str = ""
    out: Any = field(default=sys.stdout)

    def handle(self, message: dict[str, Any]) -> None:
        if self.analysis is None and message.get("analysis"):
            self.analysis = message["analysis"]  # a fresh case: the first analysis is ours
        if message.get("analysis") != self.analysis:
            return
        if message.get("type") == "tokens" and message.get("seq", 0) > self.last_seq:
            self.last_seq = message["seq"]
            self.messages += 1
            self.chars += len(message.get("text", ""))
            self.out.write(message.get("text", ""))
            self.out.flush()
        elif message.get("type") == "status":
            self.status = message.get("status", self.status)
            self.error = message.get("error") or ""


def open_socket(browser: Browser, case: str) -> ClientConnection:
    parts = urlsplit(browser.base)
    scheme = "wss" if parts.scheme == "https" else "ws"
    origin = f"{parts.scheme}://{parts.netloc}"  # must match ALLOWED_HOSTS (origin validator)
    return connect(
        f"{scheme}://{parts.netloc}/ws/cases/{case}/",
        origin=origin,  # type: ignore[arg-type]  # websockets' Origin is a NewType of str
        additional_headers={"Cookie": browser.cookie_header()},
        open_timeout=15,
    )


def follow(
    browser: Browser, case: str, ws: ClientConnection, stream: Stream, deadline: float
) -> str:
    """Read until a final status; reconnect and resume after the last sequence on a drop."""
    reconnects = 0
    while stream.status not in FINAL:
        if time.monotonic() > deadline:
            return "timeout"
        try:
            raw = ws.recv(timeout=max(0.1, min(5.0, deadline - time.monotonic())))
        except TimeoutError:
            continue
        except ConnectionClosed:
            reconnects += 1
            if reconnects > 5:
                raise
            ws = open_socket(browser, case)
            if stream.analysis:
                resume = {"type": "resume", "analysis": stream.analysis, "after": stream.last_seq}
                ws.send(json.dumps(resume))
            continue
        stream.handle(json.loads(raw))
    ws.close()
    return stream.status


class Command(BaseCommand):
    help = "Sign in, create a case, ask a question and print the answer as it streams."

    def add_arguments(self, parser: CommandParser) -> None:
        port = os.environ.get("GEMMA_PORT", "8000")
        parser.add_argument("--url", default=f"http://127.0.0.1:{port}/")
        parser.add_argument("--username", default=os.environ.get("GEMMA_ADMIN_USER", "admin"))
        parser.add_argument("--password", help="default: GEMMA_ADMIN_PASSWORD, else asked")
        parser.add_argument("--question", default="What is the capital of France? Answer briefly.")
        parser.add_argument("--timeout", type=float, default=180.0)

    def handle(self, *args: Any, **opts: Any) -> None:
        password = opts["password"] or os.environ.get("GEMMA_ADMIN_PASSWORD")
        if not password:
            if not sys.stdin.isatty():
                self.stderr.write("no password: pass --password or set GEMMA_ADMIN_PASSWORD")
                raise SystemExit(3)
            password = getpass.getpass(f"Password for {opts['username']}: ")
        try:
            code = self._run(opts, password)
        except (SmokeError, OSError, WebSocketException) as exc:
            self.stderr.write(f"smoke: {exc}")
            code = 3
        raise SystemExit(code)

    def _run(self, opts: dict[str, Any], password: str) -> int:
        started = time.monotonic()
        browser = Browser(opts["url"])
        sign_in(browser, opts["username"], password)
        case = create_case(browser, f"Smoke test {time.strftime('%Y-%m-%d %H:%M:%S')}")
        self.stderr.write(f"signed in; case {case}; asking: {opts['question']}")
        ws = open_socket(browser, case)  # before asking, so that no token is missed
        browser.post(f"cases/{case}/ask/", {"question": opts["question"]})
        stream = Stream()
        status = follow(browser, case, ws, stream, started + opts["timeout"])
        elapsed = time.monotonic() - started
        sys.stdout.write("\n")
        self.stderr.write(
            f"{status}: {stream.chars} chars in {stream.messages} messages, {elapsed:.1f}s"
            + (f"; error: {stream.error}" if stream.error else "")
        )
        return 2 if status == "timeout" else FINAL[status]
