"""Owners manage members; a case always keeps at least one owner."""

from __future__ import annotations

import pytest
from django.urls import reverse

from analysis.models import Membership

pytestmark = pytest.mark.django_db


def owner_membership(people):
    return Membership.objects.get(case=people.case, user=people.alice)


@pytest.mark.parametrize("handle", ["mallory", "MALLORY@example.org"])
def test_it_adds_a_member_by_username_or_email(client, people, handle):
    client.force_login(people.alice)
    client.post(reverse("member-add", args=[people.case.id]), {"user": handle, "role": "viewer"})
    assert Membership.objects.get(case=people.case, user=people.mallory).role == "viewer"


def test_it_refuses_unknown_users_and_existing_members(client, people):
    client.force_login(people.alice)
    url = reverse("member-add", args=[people.case.id])
    client.post(url, {"user": "nobody", "role": "viewer"})
    response = client.post(url, {"user": "bob", "role": "viewer"}, follow=True)
    assert "already a member" in response.content.decode()
    assert Membership.objects.filter(case=people.case).count() == 3


def test_it_changes_a_role(client, people):
    client.force_login(people.alice)
    carol = Membership.objects.get(case=people.case, user=people.carol)
    client.post(reverse("member-role", args=[people.case.id, carol.id]), {"role": "reviewer"})
    carol.refresh_from_db()
    assert carol.role == "reviewer"


def test_the_last_owner_cannot_step_down_or_leave(client, people):
    client.force_login(people.alice)
    me = owner_membership(people)
    client.post(reverse("member-role", args=[people.case.id, me.id]), {"role": "viewer"})
    client.post(reverse("member-remove", args=[people.case.id, me.id]))
    me.refresh_from_db()
    assert me.role == Membership.Role.OWNER


def test_an_owner_may_leave_when_another_owner_remains(client, people):
    Membership.objects.filter(case=people.case, user=people.bob).update(role="owner")
    client.force_login(people.alice)
    response = client.post(
        reverse("member-remove", args=[people.case.id, owner_membership(people).id])
    )
    assert response["Location"] == reverse("case-list")
    assert client.get(reverse("case-detail", args=[people.case.id])).status_code == 404


def test_a_membership_of_another_case_is_404(client, people):
    from analysis.models import Case

    other = Case.create_with_owner(user=people.mallory, title="Other")
    theirs = Membership.objects.get(case=other)
    client.force_login(people.alice)
    url = reverse("member-remove", args=[people.case.id, theirs.id])
    assert client.post(url).status_code == 404
    assert Membership.objects.filter(pk=theirs.pk).exists()
