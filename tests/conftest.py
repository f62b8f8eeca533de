from __future__ import annotations

from pathlib import Path

import pytest

from tests.base import make_people
from tests.object_store import media_store, seaweedfs  # noqa: F401 - fixtures

FIXTURES = Path(__file__).parent / "fixtures"
MODELS = FIXTURES / "models"
TINY_TEXT = MODELS / "tiny-gemma4-f16.gguf"
TINY_Q8 = MODELS / "tiny-gemma4-q8_0.gguf"
TINY_MMPROJ = MODELS / "mmproj-tiny-gemma4-f16.gguf"


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    """Every test runs on the tiny real model, with media and state in its own folder."""
    settings.GEMMA_MODEL_PATH = str(TINY_TEXT)
    settings.GEMMA_N_CTX = 512
    settings.GEMMA_N_THREADS = 2
    settings.GEMMA_MAX_TOKENS = 48
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.GEMMA_PREFIX_CACHE_DIR = tmp_path / "prefix-cache"
    settings.AUDIT_SEAL_PATH = tmp_path / "audit-seals.log"
    # Real hashing costs ~0.3 s a user; tests create five per case.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite, a test database in a file (WAL, busy timeout), as the site runs, not in
    shared-cache memory: there the browser tests' server, worker and test threads writing at
    once fail with "table is locked" instead of waiting their turn."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        folder = tmp_path_factory.mktemp("database")
        database.setdefault("TEST", {})["NAME"] = str(folder / "test.sqlite3")


@pytest.fixture(autouse=True, scope="session")
def _audit_rows_flushable():
    """Let transactional tests end with their flush despite the append-only audit triggers.

    The flush is a DELETE on SQLite and a TRUNCATE on PostgreSQL, and the triggers refuse
    both (as they should in production): lift them for the flush only.
    """
    from django.db.backends.base.operations import BaseDatabaseOperations

    from tests.audit_helpers import triggers_lifted

    original = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        with triggers_lifted(self.connection):
            original(self, sql_list)

    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush
    yield
    BaseDatabaseOperations.execute_sql_flush = original


@pytest.fixture
def people(db):
    return make_people()


@pytest.fixture
def fresh_engine():
    """Load the engine from the current settings, and drop it after the test."""
    from analysis.inference import engine

    engine.reset_engine()
    yield engine
    engine.reset_engine()
