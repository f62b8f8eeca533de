"""A real OpenID Provider (npm's oidc-provider on this machine's Node) for the OIDC tests.

It is installed by the tests from tests/oidc/package-lock.json into tests/oidc/node_modules
(ignored by git). Without node/npm the tests skip here and fail under CI.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import pytest

from tests import processes

HERE = Path(__file__).parent / "oidc"
CLIENT_ID, CLIENT_SECRET = "gemma-web", "test-client-secret"


def require_node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        if not (HERE / "node_modules" / "oidc-provider").exists():
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=HERE, check=True,
                timeout=300,
            )  # fmt: skip
        return node
    if os.environ.get("CI"):
        raise RuntimeError("CI needs node and npm for the OIDC tests (.ci/run installs them)")
    pytest.skip("no node/npm on this machine", allow_module_level=True)


@dataclass
class Provider:
    base: str
    process: subprocess.Popen
    accounts_file: Path

    def set_account(self, username: str, email: str, groups: list[str]) -> None:
        accounts = json.loads(self.accounts_file.read_text())
        accounts[username] = {"email": email, "groups": groups}
        self.accounts_file.write_text(json.dumps(accounts))

    def endpoints(self) -> dict[str, str]:
        return {
            "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{self.base}/auth",
            "OIDC_OP_TOKEN_ENDPOINT": f"{self.base}/token",
            "OIDC_OP_USER_ENDPOINT": f"{self.base}/me",
            "OIDC_OP_JWKS_ENDPOINT": f"{self.base}/jwks",
        }

    def sign_in(self, authorize_url: str, username: str) -> str:
        """Walk the provider's own login and consent pages; the redirect back to the site."""
        import requests

        browser = requests.Session()
        url = authorize_url
        for _ in range(12):  # login, consent and their redirects: a handful of hops
            response = browser.get(url, allow_redirects=False, timeout=10)
            if response.is_redirect:
                url = urljoin(url, response.headers["Location"])
                if not url.startswith(self.base):
                    return url
                continue
            action, fields = _form(response.text)
            if "login" in fields:
                fields.update(login=username, password="any")
            response = browser.post(urljoin(url, action), data=fields, allow_redirects=False,
                                    timeout=10)  # fmt: skip
            url = urljoin(url, response.headers["Location"])
            if not url.startswith(self.base):
                return url
        raise RuntimeError("the provider never sent the browser back")

    def stop(self) -> None:
        processes.stop(self.process)
        shutil.rmtree(self.accounts_file.parent, ignore_errors=True)


def _form(page: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form[^>]*action="([^"]+)"', page)
    if action is None:
        raise RuntimeError(f"no form on the provider's page: {page[:500]}")
    fields = {}
    for tag in re.findall(r"<input[^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[name.group(1)] = html.unescape(value.group(1)) if value else ""
    return html.unescape(action.group(1)), fields


def start(redirect_uri: str) -> Provider:
    node = require_node()
    folder = Path(tempfile.mkdtemp(prefix="gemma-test-oidc-"))
    accounts = folder / "accounts.json"
    accounts.write_text("{}")
    port = processes.free_port()
    process = subprocess.Popen(
        [node, str(HERE / "provider.mjs"), str(port), CLIENT_ID, CLIENT_SECRET, redirect_uri,
         str(accounts)],
        stdout=subprocess.DEVNULL, stderr=(folder / "provider.log").open("wb"), cwd=HERE,
    )  # fmt: skip
    provider = Provider(f"http://127.0.0.1:{port}", process, accounts)
    _wait_ready(provider, port)
    return provider


def _wait_ready(provider: Provider, port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if provider.process.poll() is not None:
            log = (provider.accounts_file.parent / "provider.log").read_text()[-2000:]
            raise RuntimeError(f"oidc-provider exited: {log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    provider.stop()
    raise RuntimeError("oidc-provider did not listen within 30 s")
