"""The case report: HTML and PDF from one template, its hash on the audit trail, and
`manage.py verify_report` checking a file against the case."""

from __future__ import annotations

import hashlib

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from analysis import audit, audit_seal
from analysis.models import Analysis, AnswerMark, AuditEvent, ReviewNote
from analysis.report_check import check, report_text
from tests import media_samples as samples
from tests.media_api import make_asset

pytestmark = pytest.mark.django_db


@pytest.fixture
def case(people):
    image = make_asset(people.case, people.bob, samples.image("png"), "scene.png")
    make_asset(people.case, people.bob, samples.wav(), "call.wav")
    chosen = Analysis.objects.create(case=people.case, created_by=people.bob, question="Who?")
    chosen.succeed("A man at [00:00:02], see [page 1].", prompt_tokens=5, completion_tokens=9)
    chosen.record = {"model": {"name": "tiny", "gguf_sha256": "ab" * 32}, "media": [
        {"id": str(image.id), "kind": "image", "sha256": image.sha256, "name": "scene.png",
         "units": {"planned": 1, "used": 1}}], "sampler": {"seed": 0}, "tokens": {}}  # fmt: skip
    chosen.save()
    other = Analysis.objects.create(case=people.case, created_by=people.bob, question="Left out?")
    other.succeed("Not pinned.", prompt_tokens=1, completion_tokens=1)
    AnswerMark.objects.create(analysis=chosen, pinned=True, state="reviewed", updated_by=people.bob)
    ReviewNote.objects.create(case=people.case, analysis=chosen, text="Matches the CCTV log.",
                              author=people.alice)  # fmt: skip
    audit_seal.seal()
    return people.case


def _export(client, case, user, fmt):
    client.force_login(user)
    response = client.post(reverse("case-report", args=[case.id]), {"format": fmt})
    assert response.status_code == 200
    return response


def test_the_pdf_report_holds_media_answers_marks_and_proof(client, people, case):
    response = _export(client, case, people.bob, "pdf")
    assert response["Content-Type"] == "application/pdf"
    assert "attachment" in response["Content-Disposition"]
    data = response.content
    text = report_text(data)
    for item in case.media.all():
        assert item.filename in text and item.sha256 in text
    assert "A man at [00:00:02]" in text and "Not pinned." not in text  # pinned ones only
    assert "Reviewed" in text and "Matches the CCTV log." in text
    assert "ab" * 32 in text  # the model file's hash from the reproducibility record
    event = AuditEvent.objects.get(case=case, action=AuditEvent.Action.CASE_EXPORTED)
    assert (
        event.details["sha256"] == hashlib.sha256(data).hexdigest() == response["X-Report-SHA256"]
    )
    assert event.details["report_id"] in text
    seal = audit_seal.read_seals().last(event.chain_key)
    assert seal.hash in text  # the latest seal, taken before the export
    assert check(data).ok, check(data).problems


def test_the_html_report_comes_from_the_same_template(client, people, case):
    data = _export(client, case, people.carol, "html").content
    assert data.startswith(b"<!doctype html>") and b"<script" not in data
    assert b"data:image/" in data  # the thumbnail travels inside the file
    result = check(data)
    assert result.ok, result.problems


def test_with_nothing_pinned_every_finished_answer_is_in(client, people, case):
    AnswerMark.objects.update(pinned=False)
    text = report_text(_export(client, case, people.bob, "html").content)
    assert "Not pinned." in text and "A man at" in text


def test_verify_report_passes_a_true_file_and_names_what_is_wrong(client, people, case, tmp_path):
    data = _export(client, case, people.bob, "pdf").content
    good = tmp_path / "report.pdf"
    good.write_bytes(data)
    call_command("verify_report", str(good))

    changed = tmp_path / "changed.html"
    html = _export(client, case, people.bob, "html").content.decode()
    changed.write_text(html.replace("scene.png", "scene2.png"), encoding="utf-8")
    with pytest.raises(CommandError, match="problem"):
        call_command("verify_report", str(changed))

    # A report whose hash is on the trail, but a hash in it is not the case's.
    forged = case.media.first().sha256
    html = _export(client, case, people.bob, "html").content.decode()
    assert not check(html.replace(forged, "0" * 63 + "1").encode()).ok
    assert not check(data + b"\n").ok


def test_an_outsider_gets_404_and_nothing_is_recorded(client, people, case):
    client.force_login(people.mallory)
    response = client.post(reverse("case-report", args=[case.id]), {"format": "pdf"})
    assert response.status_code == 404
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.CASE_EXPORTED).exists()
    client.force_login(people.bob)
    bad = client.post(reverse("case-report", args=[case.id]), {"format": "docx"})
    assert bad.status_code == 400
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.CASE_EXPORTED).exists()
    assert audit.verify(case).ok
