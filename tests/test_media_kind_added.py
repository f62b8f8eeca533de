"""A new media kind is one declaration: registered from this test module, nothing else touched,
a file of it is sniffed, checked in the sandbox, shown, downloaded and given to the model."""

from __future__ import annotations

import pytest
from django.urls import reverse

from analysis.inference.plan import Limits, build_sections
from analysis.inference.types import MediaInput
from analysis.media import registry, storage
from analysis.media.types import Detected, MediaKind, MediaRejected, Sniffed
from tests.media_api import assert_rejected, checked, upload

pytestmark = pytest.mark.django_db
MAGIC = b"TALLY1\n"


def sniff(head: bytes) -> Sniffed | None:
    if not head.startswith(MAGIC):
        return None
    return Sniffed("tally", "tally", "application/x-tally", "Tally sheet", ".tally")


def probe(path, key: str) -> Detected:
    marks = path.read_bytes()[len(MAGIC) :].split()
    if not all(mark == b"|" for mark in marks):
        raise MediaRejected("A tally sheet holds nothing but | marks.")
    return Detected("tally", "application/x-tally", f"Tally sheet, {len(marks)} marks", {})


def derive(asset_id, path, mime: str) -> tuple[dict, dict]:
    count = len(path.read_bytes()[len(MAGIC) :].split())
    with storage.derived_writer(asset_id, "count.txt") as tmp:
        tmp.write_text(str(count))
    return {"marks": count}, {"count": "count.txt"}


def section(item, number, caps, limits, plan):
    from analysis.inference.units import FIXED, Section, Unit

    marks = len(item.path.read_bytes()[len(MAGIC) :].split())
    return Section(item, f"Tally {number}:", [Unit("text", f"{marks} marks", 0, {})], FIXED)


TALLY = MediaKind(
    name="tally", label="Tally sheet", sniff=sniff, probe=probe, derive=derive,
    section=section, extensions={"application/x-tally": ".tally"},
)  # fmt: skip


@pytest.fixture
def tally():
    registry.register(TALLY)
    yield TALLY
    registry.unregister("tally")


def test_a_kind_registered_here_is_uploaded_checked_shown_and_downloaded(client, people, tally):
    client.force_login(people.bob)
    asset = checked(upload(client, people.case, MAGIC + b"| | | |", "count.html"))
    assert (asset.status, asset.kind, asset.detected) == ("ready", "tally", "Tally sheet, 4 marks")
    assert asset.metadata == {"marks": 4} and asset.derived == {"count": "count.txt"}
    page = client.get(reverse("media-detail", args=[people.case.id, asset.id]))
    assert page.status_code == 200 and b"No preview for tally sheet items" in page.content
    download = client.get(reverse("media-file", args=[people.case.id, asset.id]) + "?download=1")
    assert 'filename="count.tally"' in download["Content-Disposition"]
    assert download["Content-Type"] == "application/octet-stream"  # not a type browsers run


def test_its_own_probe_refuses_what_it_does_not_take(client, people, tally):
    client.force_login(people.bob)
    assert_rejected(checked(upload(client, people.case, MAGIC + b"| x |", "t.txt")), "| marks")


def test_the_model_receives_what_the_kind_says(tally, tmp_path):
    path = tmp_path / "t"
    path.write_bytes(MAGIC + b"| | |")
    item = MediaInput(id="1", kind="tally", path=path, sha256="0" * 64, name="t")
    (section,) = build_sections([item], caps=None, limits=Limits())
    assert section.text("<m>") == "Tally 1:\n3 marks"


def test_without_the_kind_the_same_bytes_are_plain_text(client, people):
    client.force_login(people.bob)
    asset = checked(upload(client, people.case, MAGIC + b"| | | |", "count.txt"))
    assert (asset.kind, asset.mime) == ("document", "text/plain")
