"""Role × action matrix over every URL under a case, plus its WebSocket.

The test enumerates the URL patterns under "cases/<uuid:case_id>/" and fails when one is
missing from MATRIX, so a new view cannot ship unchecked. Outsiders (and staff without
break-glass) get 404 everywhere, exactly as for a case that does not exist.
"""

from __future__ import annotations

import uuid

import pytest
from django.urls import URLPattern, reverse
from django.utils import timezone

from analysis import urls as analysis_urls
from analysis.models import (
    Analysis,
    Batch,
    BreakGlass,
    LegalHold,
    Membership,
    PromptTemplate,
)
from tests.base import case_socket
from tests.media_api import creation_headers, media_kwargs, media_world

CASE_PREFIX = "cases/<uuid:case_id>/"
ROLES = ["owner", "reviewer", "viewer", "outsider", "staff", "staff_bg", "anonymous"]
OK, REDIRECT, FORBIDDEN, NOT_FOUND, TO_LOGIN = 200, 302, 403, 404, "login"


def row(owner, reviewer, viewer, outsider=NOT_FOUND, staff=NOT_FOUND, staff_bg=None):
    """Expected outcome per role; anonymous users are always sent to sign in."""
    return dict(
        owner=owner, reviewer=reviewer, viewer=viewer, outsider=outsider, staff=staff,
        staff_bg=FORBIDDEN if staff_bg is None else staff_bg, anonymous=TO_LOGIN,
    )  # fmt: skip


# name: (method, data, expected outcome per role)
MATRIX = {
    "case-detail": ("get", {}, row(OK, OK, OK, staff_bg=OK)),
    "case-edit": ("get", {}, row(OK, FORBIDDEN, FORBIDDEN)),
    "case-set-status": ("post", {"action": "close"}, row(REDIRECT, FORBIDDEN, FORBIDDEN)),
    "member-list": ("get", {}, row(OK, OK, OK, staff_bg=OK)),
    "member-add": ("post", {"user": "dave", "role": "viewer"}, row(REDIRECT, FORBIDDEN, FORBIDDEN)),
    "member-role": ("post", {"role": "viewer"}, row(REDIRECT, FORBIDDEN, FORBIDDEN)),
    "member-remove": ("post", {}, row(REDIRECT, FORBIDDEN, FORBIDDEN)),
    "break-glass": ("get", {}, row(NOT_FOUND, NOT_FOUND, NOT_FOUND, staff=OK, staff_bg=OK)),
    "analysis-ask": ("post", {"question": "What happens?"}, row(REDIRECT, REDIRECT, FORBIDDEN)),
    "analysis-detail": ("get", {}, row(OK, OK, OK, staff_bg=OK)),
    # Running an analysis again is asking again.
    "analysis-reproduce": ("post", {}, row(REDIRECT, REDIRECT, FORBIDDEN)),
    # Audit trail: owners (and staff auditors, tests/test_audit_page.py) only.
    "case-audit": ("get", {}, row(OK, OK, OK)),
    "case-audit-verify": ("post", {}, row(OK, FORBIDDEN, FORBIDDEN)),
    "case-audit-csv": ("get", {}, row(OK, FORBIDDEN, FORBIDDEN)),
    "case-audit-json": ("get", {}, row(OK, FORBIDDEN, FORBIDDEN)),
    # Media. The open upload belongs to alice: nobody else may add bytes to it.
    "media-upload-create": ("post", {"filename": "a.png", "size": 10}, row(201, 201, FORBIDDEN)),
    "media-upload": ("get", {}, row(OK, NOT_FOUND, FORBIDDEN)),
    "media-detail": ("get", {}, row(OK, OK, OK, staff_bg=OK)),
    "media-file": ("get", {}, row(OK, OK, OK, staff_bg=OK)),
    "media-derived": ("get", {}, row(OK, OK, OK, staff_bg=OK)),
    "media-delete": ("post", {}, row(REDIRECT, FORBIDDEN, FORBIDDEN)),
    # Reviewing: marks and notes are comments; a report is reading (and is recorded).
    "analysis-mark": ("post", {"state": "reviewed"}, row(REDIRECT, REDIRECT, FORBIDDEN)),
    "analysis-note": ("post", {"text": "Checked."}, row(REDIRECT, REDIRECT, FORBIDDEN)),
    "media-note": ("post", {"text": "At the door."}, row(REDIRECT, REDIRECT, FORBIDDEN)),
    "case-report": ("post", {"format": "html"}, row(OK, OK, OK, staff_bg=OK)),
    # Steering questions: cancel and retry are asking; a question that did not fail is
    # not retried (409). Anyone who sees the case sees where its questions stand.
    "analysis-cancel": ("post", {}, row(REDIRECT, REDIRECT, FORBIDDEN)),
    "analysis-retry": ("post", {}, row(409, 409, FORBIDDEN)),
    "case-queue": ("get", {}, row(OK, OK, OK, staff_bg=OK)),
    # Templates: members see them, owners change the case's own.
    "case-templates": ("get", {}, row(OK, OK, OK, staff_bg=OK)),
    "case-template-edit": ("get", {}, row(OK, FORBIDDEN, FORBIDDEN)),
    "case-template-delete": ("post", {}, row(REDIRECT, FORBIDDEN, FORBIDDEN)),
    "batch-create": ("post", {}, row(REDIRECT, REDIRECT, FORBIDDEN)),
    "batch-row": ("get", {}, row(OK, OK, OK, staff_bg=OK)),
    "batch-csv": ("get", {}, row(OK, OK, OK, staff_bg=OK)),
    # Retention: members read the schedule; owners override, hold, ask for early deletion and
    # download certificates; staff admins place and lift holds in any case, from outside.
    "case-retention": ("get", {}, row(OK, OK, OK, staff_bg=OK)),
    "case-retention-policy": ("post", {}, row(OK, FORBIDDEN, FORBIDDEN)),
    "case-hold-place": (
        "post",
        {"reason": "Subpoena"},
        row(REDIRECT, FORBIDDEN, FORBIDDEN, staff=REDIRECT, staff_bg=REDIRECT),
    ),
    "case-hold-lift": (
        "post",
        {"reason": "Over"},
        row(REDIRECT, FORBIDDEN, FORBIDDEN, staff=REDIRECT, staff_bg=REDIRECT),
    ),
    "case-deletion-request": ("post", {"reason": "Early"}, row(REDIRECT, FORBIDDEN, FORBIDDEN)),
    "case-purge-certificate": ("get", {}, row(OK, FORBIDDEN, FORBIDDEN)),
}
WEBSOCKET = row(True, True, True, outsider=False, staff=False, staff_bg=True) | {"anonymous": False}


def case_routes() -> list[str]:
    return [
        p.name
        for p in analysis_urls.urlpatterns
        if isinstance(p, URLPattern) and str(p.pattern).startswith(CASE_PREFIX)
    ]


def test_every_case_route_is_in_the_matrix():
    missing = sorted(set(case_routes()) - set(MATRIX))
    assert not missing, f"add these case routes to the access matrix: {missing}"


@pytest.fixture
def world(people, django_user_model, monkeypatch):
    monkeypatch.setattr("analysis.tasks.run_analysis.delay", lambda analysis_id: None)
    staff = django_user_model.objects.create_user("sam", password="x", is_staff=True)
    staff_bg = django_user_model.objects.create_user("bea", password="x", is_staff=True)
    django_user_model.objects.create_user("dave", "dave@example.org", "x")
    BreakGlass.open(case=people.case, user=staff_bg, reason="Regulator request #1234")
    users = {
        "owner": people.alice, "reviewer": people.bob, "viewer": people.carol,
        "outsider": people.mallory, "staff": staff, "staff_bg": staff_bg, "anonymous": None,
    }  # fmt: skip
    analysis = Analysis.objects.create(case=people.case, created_by=people.bob, question="Q?")
    PromptTemplate.objects.create(case=people.case, name="Ours", text="Describe {item}.")
    Batch.objects.create(case=people.case, name="Ours", created_by=people.bob)
    target = Membership.objects.get(case=people.case, user=people.carol)
    LegalHold.objects.create(case=people.case, reason="Old", placed_by=people.alice,
                             lifted_at=timezone.now(), lift_reason="Over")  # fmt: skip
    media_world(people.case, people.alice)
    return people.case, users, analysis, target


def url_for(name: str, case_id, analysis, membership) -> str:
    kwargs = {"case_id": case_id}
    if name.startswith("analysis-") and name != "analysis-ask":
        kwargs["analysis_id"] = analysis.id
    if name.startswith("case-template-"):
        kwargs["template_id"] = PromptTemplate.objects.get(name="Ours").id
    if name in ("batch-row", "batch-csv"):
        kwargs["batch_id"] = Batch.objects.get().id
    if name == "case-hold-lift":  # a guessed case id has no hold either
        hold = LegalHold.objects.filter(case_id=case_id).first()
        kwargs["hold_id"] = hold.id if hold else uuid.uuid4()
    if name.startswith("member-") and name not in ("member-list", "member-add"):
        kwargs["membership_id"] = membership.id
    if name.startswith("media-"):
        kwargs.update(media_kwargs(name))
    return reverse(name, kwargs=kwargs)


def send(client, method: str, url: str, data: dict, name: str):
    if name == "media-upload-create":  # tus creation: the file's size and name in headers
        return client.post(url, headers=creation_headers(data["size"], data["filename"]))
    return getattr(client, method)(url, data)


def outcome(response):
    if response.status_code == 302 and "/login/" in response["Location"]:
        return TO_LOGIN
    return response.status_code


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(MATRIX))
@pytest.mark.parametrize("role", ROLES)
def test_matrix(world, client, name, role):
    case, users, analysis, membership = world
    method, data, expected = MATRIX[name]
    if users[role] is not None:
        client.force_login(users[role])
    response = send(client, method, url_for(name, case.id, analysis, membership), data, name)
    assert outcome(response) == expected[role], f"{role} on {name}"


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(MATRIX))
def test_a_guessed_case_id_is_404_for_everyone_signed_in(world, client, name):
    case, users, analysis, membership = world
    method, data, _ = MATRIX[name]
    for role in ("owner", "staff_bg"):
        client.force_login(users[role])
        url = url_for(name, uuid.uuid4(), analysis, membership)
        response = send(client, method, url, data, name)
        assert response.status_code == NOT_FOUND, f"{role} on {name}"


@pytest.mark.django_db
def test_an_expired_break_glass_gives_nothing(world, client):
    case, users, analysis, membership = world
    BreakGlass.objects.update(expires_at="2000-01-01T00:00:00Z")
    client.force_login(users["staff_bg"])
    assert client.get(reverse("case-detail", args=[case.id])).status_code == NOT_FOUND


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ROLES)
async def test_websocket_matrix(world, role):
    case, users, _, _ = world
    socket = await case_socket(users[role], case.id)
    connected, _ = await socket.connect()
    await socket.disconnect()
    assert connected is WEBSOCKET[role]
