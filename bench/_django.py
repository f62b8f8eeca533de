"""Set up Django for a bench script on a throwaway database (SQLite, or DATABASE_URL)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup() -> None:
    sys.path.insert(0, str(ROOT))
    if "GEMMA_VAR_DIR" not in os.environ:
        os.environ["GEMMA_VAR_DIR"] = tempfile.mkdtemp(prefix="gemma-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gemma_web.settings")
    import django
    from django.conf import settings

    django.setup()
    settings.ALLOWED_HOSTS = ["*"]
    # No collectstatic in a bench: plain static URLs instead of the manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from django.core.management import call_command

    if os.environ.get("DATABASE_URL"):
        # Never touch a real database: benchmark in a fresh test database beside it.
        from django.test.utils import setup_databases

        setup_databases(verbosity=0, interactive=False)
    else:
        call_command("migrate", verbosity=0)
