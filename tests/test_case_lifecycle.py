"""Cases are created, edited, closed (read-only for everyone), archived (hidden) and reopened."""

from __future__ import annotations

import pytest
from django.urls import reverse

from analysis.models import Case, Membership

pytestmark = pytest.mark.django_db


def set_status(client, case, verb):
    return client.post(reverse("case-set-status", args=[case.id]), {"action": verb})


def test_it_creates_a_case_owned_by_its_creator(client, people):
    client.force_login(people.bob)
    response = client.post(reverse("case-create"), {"title": "Line 3 footage", "reference": ""})
    case = Case.objects.get(title="Line 3 footage")
    assert response["Location"] == reverse("case-detail", args=[case.id])
    assert case.reference is None
    assert Membership.objects.get(case=case).role == Membership.Role.OWNER


def test_references_are_unique(client, people):
    client.force_login(people.bob)
    response = client.post(reverse("case-create"), {"title": "Dup", "reference": "2026-CMP-0001"})
    assert response.status_code == 200
    assert "already exists" in response.content.decode()


def test_the_owner_edits_the_case(client, people):
    client.force_login(people.alice)
    url = reverse("case-edit", args=[people.case.id])
    client.post(url, {"title": "Renamed", "reference": "R-1", "description": "why"})
    people.case.refresh_from_db()
    assert (people.case.title, people.case.reference) == ("Renamed", "R-1")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("case-edit", {"title": "x"}),
        ("analysis-ask", {"question": "Why?"}),
        ("member-add", {"user": "mallory", "role": "viewer"}),
    ],
)
def test_a_closed_case_is_read_only_for_everyone(client, people, name, data):
    client.force_login(people.alice)
    set_status(client, people.case, "close")
    for user in (people.alice, people.bob):
        client.force_login(user)
        assert client.post(reverse(name, args=[people.case.id]), data).status_code == 403
    assert client.get(reverse("case-detail", args=[people.case.id])).status_code == 200


def test_the_owner_reopens_a_closed_case(client, people):
    client.force_login(people.alice)
    set_status(client, people.case, "close")
    set_status(client, people.case, "reopen")
    people.case.refresh_from_db()
    assert people.case.status == Case.Status.OPEN


def test_an_impossible_transition_changes_nothing(client, people):
    client.force_login(people.alice)
    set_status(client, people.case, "reopen")  # it is open already
    set_status(client, people.case, "explode")
    people.case.refresh_from_db()
    assert people.case.status == Case.Status.OPEN


def test_an_archived_case_is_hidden_from_the_default_list(client, people):
    client.force_login(people.alice)
    set_status(client, people.case, "archive")
    assert people.case.title not in client.get(reverse("case-list")).content.decode()
    archived = client.get(reverse("case-list"), {"status": "archived"}).content.decode()
    assert people.case.title in archived


def test_the_case_page_shows_recent_activity(client, people):
    client.force_login(people.alice)
    client.post(reverse("case-edit", args=[people.case.id]), {"title": "Renamed"})
    page = client.get(reverse("case-detail", args=[people.case.id])).content.decode()
    assert "alice · case edited" in page
