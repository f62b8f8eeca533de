"""The cast every test uses: alice owns the case, bob reviews, carol views, mallory is outside."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model

from analysis.models import Case, Membership

PASSWORD = "correct horse battery staple"


@dataclass
class People:
    alice: object
    bob: object
    carol: object
    mallory: object
    admin: object
    case: Case


def make_people() -> People:
    User = get_user_model()
    alice = User.objects.create_user("alice", "alice@example.org", PASSWORD)
    bob = User.objects.create_user("bob", "bob@example.org", PASSWORD)
    carol = User.objects.create_user("carol", "carol@example.org", PASSWORD)
    mallory = User.objects.create_user("mallory", "mallory@example.org", PASSWORD)
    admin = User.objects.create_superuser("admin", "admin@example.org", PASSWORD)
    case = Case.create_with_owner(user=alice, title="Transaction 4411", reference="2026-CMP-0001")
    Membership.objects.create(case=case, user=bob, role=Membership.Role.REVIEWER)
    Membership.objects.create(case=case, user=carol, role=Membership.Role.VIEWER)
    return People(alice, bob, carol, mallory, admin, case)
