"""Production settings: `manage.py check --deploy` is clean, HSTS is configurable, cookies
are Secure, HttpOnly and SameSite."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from tests.base import PASSWORD

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


def production_env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "DJANGO_"))}
    env.update(
        PRODUCTION="1",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="review.example.org",
        CSRF_TRUSTED_ORIGINS="https://review.example.org",
        GEMMA_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    env.update(extra)
    return env


def manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


def test_check_deploy_is_clean_under_the_production_env(tmp_path):
    done = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_the_same_check_fails_without_production(tmp_path):
    """Guards the test above: the check does see an unhardened configuration."""
    env = production_env(tmp_path, PRODUCTION="0")
    done = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode != 0
    assert "security.W004" in done.stderr + done.stdout  # no HSTS


SHOW = (
    "from django.conf import settings as s; import json; print(json.dumps([s.SECURE_HSTS_SECONDS,"
    " s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, s.SESSION_COOKIE_SECURE,"
    " s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT]))"
)


def shown(env: dict) -> list:
    done = manage(env, "shell", "-c", SHOW)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_hsts_subdomains_and_preload_are_configurable(tmp_path):
    assert shown(production_env(tmp_path)) == [31_536_000, True, True, True, True, True]
    env = production_env(
        tmp_path, SECURE_HSTS_SECONDS="600", SECURE_HSTS_INCLUDE_SUBDOMAINS="0",
        SECURE_HSTS_PRELOAD="0",
    )  # fmt: skip
    assert shown(env)[:3] == [600, False, False]


def test_session_and_csrf_cookies_are_httponly_samesite_and_secure_in_production(
    client, people, settings
):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    client.get(reverse("login"))
    reply = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert reply.status_code == 302
    for name in ("sessionid", "csrftoken"):
        cookie = reply.cookies[name] if name in reply.cookies else client.cookies[name]
        assert cookie["httponly"] and cookie["secure"], name
        assert cookie["samesite"] == "Lax", name
