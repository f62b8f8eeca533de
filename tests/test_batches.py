"""One template over many items: a job each, a summary row, a CSV export."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from analysis.models import Analysis, AuditEvent, Batch, PromptTemplate
from tests import media_samples as samples
from tests.media_api import make_asset

pytestmark = pytest.mark.django_db


@pytest.fixture
def documents(people):
    return [
        make_asset(people.case, people.alice, samples.pdf([f"Report {i}"]), f"report-{i}.pdf")
        for i in range(3)
    ]


def test_a_batch_queues_one_job_per_item(
    client, people, documents, monkeypatch, django_capture_on_commit_callbacks
):
    queued: list[str] = []
    monkeypatch.setattr("analysis.tasks.run_analysis.delay", queued.append)
    template = PromptTemplate.objects.get(name="Summarize this document with page references")
    client.force_login(people.bob)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("batch-create", args=[people.case.id]),
            {"template": template.id, "items": [d.id for d in documents]},
        )
    assert response.status_code == 302
    batch = Batch.objects.get()
    jobs = list(batch.analyses.order_by("created_at"))
    assert len(jobs) == 3 and sorted(queued) == sorted(str(j.id) for j in jobs)
    for job, doc in zip(jobs, documents, strict=True):
        assert list(job.media.all()) == [doc] and doc.filename in job.question
        assert job.template == template and job.sampler == template.sampler
    assert batch.summary() == {"total": 3, "finished": 0, "queued": 3}
    assert AuditEvent.objects.filter(action="batch.started").count() == 1


def test_the_summary_and_csv_follow_the_jobs(client, people, documents):
    batch = Batch.objects.create(case=people.case, name="Summaries", created_by=people.bob)
    answers = ['=HYPERLINK("http://x")', "Two pages [page 2].", ""]
    statuses = ["succeeded", "succeeded", "failed"]
    for doc, answer, status in zip(documents, answers, statuses, strict=True):
        job = Analysis.objects.create(case=people.case, created_by=people.bob, question="Sum?",
                                      batch=batch, answer=answer, status=status)  # fmt: skip
        job.media.set([doc])
    assert batch.summary() == {"total": 3, "finished": 3, "succeeded": 2, "failed": 1}
    client.force_login(people.carol)  # a viewer may read the answers, so the export too
    row = client.get(reverse("batch-row", args=[people.case.id, batch.id])).content.decode()
    assert "3 of 3 done" in row and "2 succeeded" in row and "1 failed" in row
    response = client.get(reverse("batch-csv", args=[people.case.id, batch.id]))
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["item"] for r in rows] == ["report-0.pdf", "report-1.pdf", "report-2.pdf"]
    assert rows[0]["answer"].startswith("'=")  # never a formula in a spreadsheet
    assert rows[1]["answer"] == "Two pages [page 2]." and rows[2]["status"] == "failed"


def test_a_batch_with_items_the_template_does_not_fit_is_refused(client, people, documents):
    image = make_asset(people.case, people.alice, samples.image("png"), "scene.png")
    template = PromptTemplate.objects.get(name="Summarize this document with page references")
    client.force_login(people.bob)
    response = client.post(
        reverse("batch-create", args=[people.case.id]),
        {"template": template.id, "items": [documents[0].id, image.id]},
        follow=True,
    )
    assert "does not apply to: scene.png" in response.content.decode()
    assert not Batch.objects.exists() and not Analysis.objects.exists()
