"""Create the first admin account if it does not exist yet.

    python manage.py ensure_admin [--username admin]

The password comes from GEMMA_ADMIN_PASSWORD, or is generated and printed once: it is stored
only as Django's password hash, never in a file. An existing account is left untouched, so a
password changed through the site is never reset by a restart.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from analysis.users import record_user_change


@dataclass(frozen=True)
class AdminLogin:
    username: str
    created: bool
    generated_password: str | None = None  # set only when we made one up: show it once


def _new_password() -> str:
    """A random password that does not start with "-", which a command line reads as an option."""
    while (password := secrets.token_urlsafe(12)).startswith("-"):
        pass
    return password


def ensure_admin(username: str, password: str | None = None) -> AdminLogin:
    User = get_user_model()
    with transaction.atomic():
        if User.objects.filter(username=username).exists():
            return AdminLogin(username, created=False)
        given = password or os.environ.get("GEMMA_ADMIN_PASSWORD", "")
        generated = None if given else _new_password()
        user = User(username=username, is_staff=True, is_superuser=True)
        try:
            validate_password(given or generated, user)
        except ValidationError as exc:
            raise CommandError(
                f"GEMMA_ADMIN_PASSWORD is too weak: {' '.join(exc.messages)}"
            ) from exc
        user.set_password(given or generated)
        user.save()
        record_user_change(user, before=None, was_active=None)
    return AdminLogin(username, created=True, generated_password=generated)


def describe(login: AdminLogin) -> list[str]:
    """How to sign in, in the words both this command and `serve` print."""
    if login.generated_password:
        return [f"Admin login: {login.username} / {login.generated_password}  (shown once)"]
    if login.created:
        return [f"Admin login: {login.username} / the password in GEMMA_ADMIN_PASSWORD"]
    return [
        f"Admin login: {login.username} (account exists; to reset its password run",
        f"  .venv/bin/python manage.py changepassword {login.username})",
    ]


class Command(BaseCommand):
    help = "Create the admin account (GEMMA_ADMIN_USER / GEMMA_ADMIN_PASSWORD) if missing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=os.environ.get("GEMMA_ADMIN_USER", "admin"))

    def handle(self, *args: Any, **opts: Any) -> None:
        for line in describe(ensure_admin(opts["username"])):
            self.stdout.write(line)
