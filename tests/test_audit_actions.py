"""Every action that exists so far leaves exactly one audit event, with the right actor,
case and target (a table-driven test).

Add a row to ACTIONS when a feature starts recording: `perform` does the action the way a
user or worker would, the three `expect_*` say what the event must name.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from analysis import access, audit, pipeline, recovery
from analysis.inference.engine import EngineError, Generation
from analysis.models import Analysis, AuditEvent, BreakGlass, Case, Membership
from tests.base import PASSWORD, People

pytestmark = pytest.mark.django_db
A = AuditEvent.Action
User = get_user_model()


class FakeEngine:
    name = "fake"

    def __init__(self, error: Exception | None = None):
        self.error = error

    def generate(self, messages, *, on_token, should_stop=None, max_tokens=None):
        on_token("Hi")
        if self.error:
            raise self.error
        return Generation("Hi", "prompt", 5, 1, "stop")


@dataclass
class World:
    people: People
    client: Client
    analysis: Analysis
    monkeypatch: pytest.MonkeyPatch

    def engine(self, error: Exception | None = None) -> None:
        self.monkeypatch.setattr(pipeline, "get_engine", lambda: FakeEngine(error))


@dataclass(frozen=True)
class Row:
    action: str
    perform: Callable[[World], object]
    expect_actor: Callable[[World], object]
    expect_case: Callable[[World], object]
    expect_target: Callable[[World], object]


def sign_in(w: World, password: str = PASSWORD):
    return w.client.post(reverse("login"), {"username": "bob", "password": password})


def sign_out(w: World):
    w.client.force_login(w.people.bob)  # force_login records nothing: only the view does
    return w.client.post(reverse("logout"))


def run(w: World, error: Exception | None = None):
    w.engine(error)
    pipeline.run_analysis(w.analysis.id)


def silent(w: World, attempts: int) -> None:
    """The worker holding the job died long ago: the sweep takes it back."""
    w.monkeypatch.setattr("analysis.tasks.run_analysis.delay", lambda analysis_id: None)
    w.analysis.start("inference@gone", 1)
    old = timezone.now() - timedelta(hours=1)
    Analysis.objects.filter(pk=w.analysis.pk).update(heartbeat_at=old, attempts=attempts)
    recovery.sweep()


def give_up(w: World):
    silent(w, Analysis.MAX_ATTEMPTS)


def stale(w: World):
    silent(w, 1)


def as_owner(w: World, name: str, data: dict | None = None, *args):
    w.client.force_login(w.people.alice)
    return w.client.post(reverse(name, args=[w.people.case.id, *args]), data or {})


def create_case(w: World):
    w.client.force_login(w.people.alice)
    w.client.post(reverse("case-create"), {"title": "Line 4 QC", "reference": "QC-4"})


def set_status(w: World, *verbs: str):
    for verb in verbs:
        as_owner(w, "case-set-status", {"action": verb})


def carol_membership(w: World):
    return Membership.objects.get(case=w.people.case, user=w.people.carol)


def remove_carol(w: World):
    w.removed_id = carol_membership(w).id  # gone after the request: keep it for the check
    as_owner(w, "member-remove", {}, w.removed_id)


def open_break_glass(w: World):
    w.client.force_login(w.people.admin)
    url = reverse("break-glass", args=[w.people.case.id])
    w.client.post(url, {"reason": "Regulator request 2026/77"})


def expire_break_glass(w: World):
    BreakGlass.objects.create(
        case=w.people.case, user=w.people.admin, reason="Audit", expires_at=timezone.now()
    )
    access.record_break_glass_expiries()
    access.record_break_glass_expiries()  # a second sweep records nothing more


def ask(w: World):
    w.monkeypatch.setattr("analysis.tasks.run_analysis.delay", lambda analysis_id: None)
    as_owner(w, "analysis-ask", {"question": "What happens at 00:12?"})


def admin_change_mallory(w: World, **changes):
    """Post mallory's account through the Django admin's change form, as a staff member would."""
    user = w.people.mallory
    data = {
        "username": user.username, "first_name": "", "last_name": "", "email": user.email,
        "is_active": "on", "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"), "initial-date_joined_0": "",
        "initial-date_joined_1": "",
    }  # fmt: skip
    for field, value in changes.items():
        if value:
            data[field] = "on"
        else:
            data.pop(field, None)
    w.client.force_login(w.people.admin)
    url = reverse("admin:auth_user_change", args=[user.pk])
    response = w.client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]


def admin_create_user(w: World):
    w.client.force_login(w.people.admin)
    w.client.post(
        reverse("admin:auth_user_add"),
        {"username": "dana", "password1": "Unguessable-2026!", "password2": "Unguessable-2026!",
         "usable_password": "true"},
    )  # fmt: skip


def ensure_first_admin(w: World):
    from analysis.management.commands.ensure_admin import ensure_admin

    ensure_admin("root-admin", "Unguessable-2026!")


bob = lambda w: w.people.bob  # noqa: E731
mallory = lambda w: w.people.mallory  # noqa: E731
alice = lambda w: w.people.alice  # noqa: E731
admin = lambda w: w.people.admin  # noqa: E731
new_case = lambda w: Case.objects.get(reference="QC-4")  # noqa: E731
last_grant = lambda w: BreakGlass.objects.latest("opened_at")  # noqa: E731
new_analysis = lambda w: Analysis.objects.latest("created_at")  # noqa: E731
nobody = lambda w: None  # noqa: E731
the_case = lambda w: w.people.case  # noqa: E731
the_analysis = lambda w: w.analysis  # noqa: E731

ACTIONS = {
    "sign in": Row(A.SIGN_IN, sign_in, bob, nobody, bob),
    "failed sign-in": Row(A.SIGN_IN_FAILED, lambda w: sign_in(w, "wrong"), nobody, nobody, bob),
    "sign out": Row(A.SIGN_OUT, sign_out, bob, nobody, bob),
    # Worker events have no human actor: the worker did them, for the case.
    "analysis started": Row(A.ANALYSIS_STARTED, run, nobody, the_case, the_analysis),
    "analysis finished": Row(A.ANALYSIS_FINISHED, run, nobody, the_case, the_analysis),
    "analysis failed (engine)": Row(
        A.ANALYSIS_FAILED, lambda w: run(w, EngineError("too long")), nobody, the_case, the_analysis
    ),
    "analysis failed (crash)": Row(
        A.ANALYSIS_FAILED, lambda w: run(w, RuntimeError("OOM")), nobody, the_case, the_analysis
    ),
    "analysis failed (gave up)": Row(A.ANALYSIS_FAILED, give_up, nobody, the_case, the_analysis),
    "analysis requeued (stale)": Row(A.ANALYSIS_REQUEUED, stale, nobody, the_case, the_analysis),
    "analysis asked": Row(A.ANALYSIS_ASKED, ask, alice, the_case, new_analysis),
    "case created": Row(A.CASE_CREATED, create_case, alice, new_case, new_case),
    "case edited": Row(
        A.CASE_EDITED,
        lambda w: as_owner(w, "case-edit", {"title": "New"}),
        alice,
        the_case,
        the_case,
    ),
    "case closed": Row(A.CASE_CLOSED, lambda w: set_status(w, "close"), alice, the_case, the_case),
    "case archived": Row(
        A.CASE_ARCHIVED, lambda w: set_status(w, "archive"), alice, the_case, the_case
    ),
    "case reopened": Row(
        A.CASE_REOPENED, lambda w: set_status(w, "close", "reopen"), alice, the_case, the_case
    ),
    "member added": Row(
        A.MEMBER_ADDED,
        lambda w: as_owner(w, "member-add", {"user": "mallory", "role": "viewer"}),
        alice,
        the_case,
        lambda w: Membership.objects.get(case=w.people.case, user=w.people.mallory),
    ),
    "member role changed": Row(
        A.MEMBER_ROLE_CHANGED,
        lambda w: as_owner(w, "member-role", {"role": "reviewer"}, carol_membership(w).id),
        alice,
        the_case,
        carol_membership,
    ),
    "member removed": Row(
        A.MEMBER_REMOVED,
        remove_carol,
        alice,
        the_case,
        lambda w: ("membership", w.removed_id),
    ),
    "user created (admin)": Row(
        A.USER_CREATED,
        admin_create_user,
        admin,
        nobody,
        lambda w: User.objects.get(username="dana"),
    ),
    "user created (ensure_admin)": Row(
        A.USER_CREATED,
        ensure_first_admin,
        nobody,
        nobody,
        lambda w: User.objects.get(username="root-admin"),
    ),
    "user deactivated": Row(
        A.USER_DEACTIVATED,
        lambda w: admin_change_mallory(w, is_active=False),
        admin,
        nobody,
        mallory,
    ),
    "user role changed": Row(
        A.USER_ROLE_CHANGED,
        lambda w: admin_change_mallory(w, is_staff=True),
        admin,
        nobody,
        mallory,
    ),
    "break-glass opened": Row(A.BREAK_GLASS_OPENED, open_break_glass, admin, the_case, last_grant),
    "break-glass expired": Row(
        A.BREAK_GLASS_EXPIRED, expire_break_glass, nobody, the_case, last_grant
    ),
}


@pytest.fixture
def world(people, client, monkeypatch) -> World:
    analysis = Analysis.objects.create(case=people.case, created_by=people.bob, question="Why?")
    return World(people, client, analysis, monkeypatch)


def _target_of(obj) -> tuple[str, str]:
    return audit._target(obj)


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_it_records_exactly_one_event(world, name):
    row = ACTIONS[name]
    before = set(AuditEvent.objects.values_list("id", flat=True))
    row.perform(world)
    new = list(AuditEvent.objects.exclude(id__in=before))
    assert Counter(e.action for e in new)[row.action] == 1, [e.action for e in new]
    event = next(e for e in new if e.action == row.action)
    assert event.actor == row.expect_actor(world)
    assert event.case == row.expect_case(world)
    assert (event.target_type, event.target_id) == _target_of(row.expect_target(world))
    assert audit.verify(event.case).ok


def test_it_keeps_where_a_sign_in_came_from(world):
    sign_in(world)
    event = AuditEvent.objects.get(action=A.SIGN_IN)
    assert event.ip == "127.0.0.1"  # the test client's REMOTE_ADDR


def test_it_keeps_the_name_typed_in_a_failed_sign_in(world):
    world.client.post(reverse("login"), {"username": "nosuchuser", "password": "x"})
    event = AuditEvent.objects.get(action=A.SIGN_IN_FAILED)
    assert event.details == {"username": "nosuchuser"}
    assert (event.target_type, event.target_id, event.actor) == ("", "", None)


def test_it_records_nothing_when_an_anonymous_visitor_signs_out(world):
    world.client.post(reverse("logout"))
    assert not AuditEvent.objects.exists()


def test_it_sends_the_admin_sign_in_through_the_audited_view(world):
    response = world.client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/admin/"


def test_it_records_a_finished_answer_with_its_hash(world):
    run(world)
    event = AuditEvent.objects.get(action=A.ANALYSIS_FINISHED)
    assert event.details["answer_sha256"] == hashlib.sha256(b"Hi").hexdigest()
    assert event.details["model"] == "fake"


def test_a_redelivered_finished_job_records_nothing_more(world):
    run(world)
    count = AuditEvent.objects.count()
    run(world)  # the broker hands the same message to a second worker
    assert AuditEvent.objects.count() == count
