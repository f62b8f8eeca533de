"""Files that attack the decoders: each ends "rejected" by the sandbox's limits, the worker
carries on, and nothing of the file is left on disk."""

from __future__ import annotations

import pytest

from analysis.models import MediaAsset
from tests import media_samples as samples
from tests.media_api import assert_rejected, checked, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob(client, people, settings):
    settings.MEDIA_SANDBOX_CPU_SECONDS = 3
    settings.MEDIA_SANDBOX_MEMORY_BYTES = 128 * 2**20
    settings.MEDIA_SANDBOX_WALL_SECONDS = 60.0
    client.force_login(people.bob)
    return client


def spin_pdf() -> bytes:
    """16 KB whose one page has 300,000 text operators: pypdf's text extraction parses them
    for about half a minute of CPU before it gives up."""
    return samples.pdf_stream(b"BT /F1 1 Tf (x) Tj ET\n" * 300_000)


def carries_on(client, people) -> None:
    """The same worker process takes the next file as if nothing happened."""
    asset = checked(upload(client, people.case, samples.image("png"), "next.png"))
    assert asset.status == MediaAsset.Status.READY


def test_a_pdf_that_makes_the_decoder_spin_is_stopped_by_the_cpu_limit(bob, people):
    data = spin_pdf()
    assert len(data) < 20_000
    assert_rejected(checked(upload(bob, people.case, data, "spin.pdf")), "more than 3 s of CPU")
    carries_on(bob, people)


def test_a_pdf_that_allocates_without_bound_is_stopped_by_the_memory_limit(bob, people):
    data = samples.pdf_inflating_to(320)  # 320 MiB for PDFium to hold, in 330 KB
    assert len(data) < 400_000
    assert_rejected(checked(upload(bob, people.case, data, "bomb.pdf")), "128 MiB of memory")
    carries_on(bob, people)


def test_the_same_pdf_passes_when_the_memory_is_there(bob, people, settings):
    settings.MEDIA_SANDBOX_MEMORY_BYTES = 2 * 2**30  # the default: 320 MiB fits
    asset = checked(upload(bob, people.case, samples.pdf_inflating_to(320), "big.pdf"))
    assert asset.status == MediaAsset.Status.READY  # so it was the limit that stopped it


def test_a_rejection_reaches_the_case_page_live(bob, people, monkeypatch):
    sent = []
    monkeypatch.setattr("analysis.streaming._send", lambda case_id, msg: sent.append(msg))
    asset = checked(upload(bob, people.case, spin_pdf(), "spin.pdf"))
    assert sent[-1]["status"] == "rejected" and sent[-1]["asset"] == str(asset.id)
    assert "CPU" in sent[-1]["reason"]
    card = bob.get(f"/cases/{people.case.id}/media/{asset.id}/", headers={"HX-Request": "true"})
    assert b"rejected" in card.content and b"CPU" in card.content
