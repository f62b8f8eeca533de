"""Seals copied to the object store: one locked object per seal run, checked by verify_audit."""

from __future__ import annotations

import pytest
from django.core.management import execute_from_command_line
from django.db import connections

from analysis import audit, audit_seal
from analysis.media import stores
from analysis.models import AuditEvent
from tests.audit_helpers import forge, rechain
from tests.object_store import use_object_store

pytestmark = pytest.mark.django_db
A = AuditEvent.Action


@pytest.fixture(autouse=True)
def on_s3(settings, seaweedfs, tmp_path):
    use_object_store(settings, seaweedfs, tmp_path)


@pytest.fixture
def trail(people):
    return [audit.record(A.CASE_EDITED, case=people.case, details={"n": n}) for n in range(3)]


def verify_audit(monkeypatch, *args: str) -> int:
    monkeypatch.setattr(connections, "close_all", lambda: None)  # keep the test's transaction
    try:
        execute_from_command_line(["manage.py", "verify_audit", *args])
    except SystemExit as exit:
        return exit.code
    return 0


def test_each_seal_run_is_also_an_object_nobody_can_delete(trail, settings):
    audit_seal.seal()
    store = stores.current()
    [key] = store.keys(audit_seal.STORE_PREFIX)
    with store.open(key) as reader:
        assert reader.read() == settings.AUDIT_SEAL_PATH.read_bytes()
    name = store._key(key)
    retention = store.client.get_object_retention(Bucket=store.bucket, Key=name)["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    [version] = store.client.list_object_versions(Bucket=store.bucket, Prefix=name)["Versions"]
    refused = store.client.delete_objects(
        Bucket=store.bucket, BypassGovernanceRetention=True,
        Delete={"Objects": [{"Key": name, "VersionId": version["VersionId"]}]},
    )  # fmt: skip
    assert [e["Code"] for e in refused.get("Errors", [])] == ["AccessDenied"]
    assert store.keys(audit_seal.STORE_PREFIX) == [key]


def test_verify_audit_checks_the_chains_against_the_stores_seals(
    trail, people, settings, monkeypatch, capsys
):
    audit_seal.seal()
    audit.record(A.CASE_EDITED, case=people.case)
    audit_seal.seal()  # a second run: a second object
    assert len(stores.current().keys(audit_seal.STORE_PREFIX)) == 2
    assert verify_audit(monkeypatch, "--seal-store") == 0
    assert "2 sealed head(s) matched" in capsys.readouterr().out
    settings.AUDIT_SEAL_PATH.unlink()  # someone removed the local file ...
    forge(trail[0], details={"n": "forged"})
    rechain(people.case)  # ... and rewrote the chain with every hash after the change
    assert verify_audit(monkeypatch) == 0  # without seals a careful forger gets through
    assert verify_audit(monkeypatch, "--seal-store") == 1


def test_seal_store_needs_the_object_store(trail, settings, monkeypatch):
    settings.MEDIA_STORAGE = "filesystem"
    assert verify_audit(monkeypatch, "--seal-store") == 2
