"""How settings.py reads the environment: typed values, checked choices, the secret key file.

Each helper takes the variable's name and default, so settings.py keeps both in plain sight.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def envbool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def envfloat(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def one_of(name: str, value: str, *allowed: str) -> None:
    """Refuse to start on a value the code would not know what to do with."""
    if value not in allowed:
        raise ImproperlyConfigured(f"{name} must be {' or '.join(allowed)}, not {value!r}")


def hour_minute(name: str, value: str) -> None:
    if not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", value):
        raise ImproperlyConfigured(f"{name} is HH:MM (UTC), not {value!r}")


def secret_key_file(path: Path) -> str:
    """The key kept in `path`, generated there once (0600) when it does not exist yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
    return path.read_text().strip()
