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


async def case_socket(user, case_id, origin: bytes = b"http://localhost", path: str = ""):
    """A WebSocket client for a case page (or `path`), signed in as `user` (None: anonymous),
    unconnected."""
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.test import Client

    from gemma_web.asgi import application

    headers = [(b"origin", origin), (b"host", b"localhost")]
    if user is not None:
        client = Client()
        await sync_to_async(client.force_login)(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return WebsocketCommunicator(application, path or f"/ws/cases/{case_id}/", headers=headers)
