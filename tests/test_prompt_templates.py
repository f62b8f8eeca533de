"""Prompt templates: the shipped defaults, who manages which, and asking with one."""

from __future__ import annotations

import pytest
from django.urls import reverse

from analysis.models import Analysis, AuditEvent, PromptTemplate
from tests import media_samples as samples
from tests.media_api import make_asset

pytestmark = pytest.mark.django_db

DEFAULTS = {
    "Flag unusual events with time codes",
    "Transcribe with time codes",
    "Describe findings in this scan",
    "Summarize this document with page references",
    "List defects visible on the line",
}


def test_the_defaults_ship_with_the_database():
    shipped = PromptTemplate.objects.filter(case__isnull=True)
    assert set(shipped.values_list("name", flat=True)) >= DEFAULTS
    flag = shipped.get(name="Flag unusual events with time codes")
    assert flag.media_kinds == ["video", "audio"] and flag.response_schema["type"] == "array"


def test_staff_manage_the_installations_templates(client, people, django_user_model):
    staff = django_user_model.objects.create_user("sam", password="x", is_staff=True)
    client.force_login(people.alice)  # a case owner is not staff
    assert client.get(reverse("staff-templates")).status_code == 404
    client.force_login(staff)
    data = {"name": "Count people", "text": "How many people are in {item}?",
            "media_kinds": ["image"], "sampler": '{"max_tokens": 64}'}  # fmt: skip
    response = client.post(reverse("staff-templates"), data)
    assert response.status_code == 302
    made = PromptTemplate.objects.get(name="Count people")
    assert made.case is None and made.sampler == {"max_tokens": 64} and made.response_schema is None
    assert AuditEvent.objects.filter(action="template.saved").count() == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("text", "Describe {item} for {whom}.", "Unknown placeholders: whom"),
        ("sampler", '{"temperature": 0, "beam": 4}', "Unknown sampler settings: beam"),
        ("sampler", "[1, 2]", "Sampler settings are a JSON object"),
        ("response_schema", '{"type": "nonsense"}', "not valid JSON Schema"),
        ("response_schema", "{not json", "Enter a valid JSON"),
    ],
)
def test_a_bad_template_is_refused_with_the_reason(client, people, field, value, message):
    data = {"name": "Bad", "text": "Describe {item}.", "sampler": "{}", "response_schema": ""}
    client.force_login(people.alice)
    response = client.post(reverse("case-templates", args=[people.case.id]), data | {field: value})
    assert response.status_code == 422 and message in response.content.decode()
    assert not PromptTemplate.objects.filter(name="Bad").exists()


def test_owners_keep_templates_of_their_case(client, people):
    client.force_login(people.bob)  # a reviewer may use them, not make them
    url = reverse("case-templates", args=[people.case.id])
    data = {"name": "Ours", "text": "Summarize {item} for {case}.", "sampler": "{}"}
    assert client.post(url, data).status_code == 403
    client.force_login(people.alice)
    assert client.post(url, data).status_code == 302
    ours = PromptTemplate.objects.get(name="Ours")
    assert ours.case == people.case
    assert ours in PromptTemplate.for_case(people.case)


def test_asking_with_a_template_fills_it_and_takes_its_settings(
    client, people, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("analysis.tasks.run_analysis.delay", lambda analysis_id: None)
    scan = make_asset(people.case, people.alice, samples.pdf(["Findings: none."]), "scan.pdf")
    template = PromptTemplate.objects.create(
        name="Scan", text="Describe {item} in {case}.", media_kinds=["document"],
        sampler={"max_tokens": 32}, response_schema={"type": "object"},
    )  # fmt: skip
    client.force_login(people.bob)
    url = reverse("analysis-ask", args=[people.case.id])
    client.post(url, {"template": template.id, "media": [scan.id]})
    analysis = Analysis.objects.get()
    assert analysis.question == f"Describe scan.pdf in {people.case.title}."
    assert analysis.template == template and analysis.sampler == {"max_tokens": 32}
    assert analysis.response_schema == {"type": "object"}


def test_a_template_for_other_media_is_refused(client, people):
    clip = make_asset(people.case, people.alice, samples.image("png"), "scene.png")
    template = PromptTemplate.objects.get(name="Summarize this document with page references")
    client.force_login(people.bob)
    response = client.post(
        reverse("analysis-ask", args=[people.case.id]),
        {"template": template.id, "media": [clip.id]},
    )
    assert response.status_code == 422 and "applies to document only" in response.content.decode()
    assert not Analysis.objects.exists()


def test_an_empty_question_without_template_is_refused(client, people):
    client.force_login(people.bob)
    response = client.post(reverse("analysis-ask", args=[people.case.id]), {"question": " "})
    assert (
        response.status_code == 422
        and "Type a question or pick a template" in response.content.decode()
    )
