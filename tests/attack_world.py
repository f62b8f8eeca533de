"""The world the attack tests run in: a victim case full of objects, and three attackers.

alice's case (the victim) holds an analysis, a membership, a processed image and an open
upload. mallory owns a case of her own (so she holds every right there) with dave as its
viewer; sam is staff without break-glass. Each attacker aims at the victim's ids, directly
and through mallory's own case (IDOR).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.apps import apps
from django.contrib.sessions.models import Session
from django.utils import timezone

from analysis.inference import registry
from analysis.models import (
    Analysis,
    Batch,
    Case,
    DeletionRequest,
    LegalHold,
    Membership,
    PromptTemplate,
    PurgeRun,
)
from tests.conftest import TINY_TEXT
from tests.media_api import media_world

# What only the victim case holds: none of it may show up in an attacker's reply.
SECRETS = ("Transaction 4411", "2026-CMP-0001", "Who signed the transfer?", "scene.png")


@dataclass
class World:
    victim: Case
    own: Case  # mallory's
    attackers: dict  # role → user
    owner: object  # alice, the victim's owner (for the CSRF tests)


def build(people, django_user_model, monkeypatch) -> World:
    monkeypatch.setattr("analysis.tasks.run_analysis.delay", lambda analysis_id: None)
    monkeypatch.setattr("analysis.tasks.process_media.delay", lambda asset_id: None)
    victim = people.case
    Analysis.objects.create(case=victim, created_by=people.alice, question=SECRETS[2])
    media_world(victim, people.alice)  # "scene.png" and an open upload
    own = Case.create_with_owner(user=people.mallory, title="Mine", reference="2026-OWN-0001")
    dave = django_user_model.objects.create_user("dave", "dave@example.org", "x")
    Membership.objects.create(case=own, user=dave, role=Membership.Role.VIEWER)
    Analysis.objects.create(case=own, created_by=people.mallory, question="My own question?")
    for case, user in ((victim, people.alice), (own, people.mallory)):  # templates and batches
        PromptTemplate.objects.create(case=case, name=f"Ours {case.pk}", text="Describe {item}.")
        Batch.objects.create(case=case, name="A batch", created_by=user)
    sam = django_user_model.objects.create_user("sam", password="x", is_staff=True)
    # Retention: a lifted hold, a pending early-deletion request and a purge run.
    now = timezone.now()
    LegalHold.objects.create(case=victim, reason="Old", placed_by=people.alice, lifted_at=now,
                             lifted_by=people.alice, lift_reason="Over")  # fmt: skip
    victim.transition("close")
    DeletionRequest.objects.create(case=victim, reason="Early", requested_by=people.alice)
    victim.transition("reopen")
    PurgeRun.objects.create(state="finished", finished_at=now)
    registry.register(name="tiny", gguf=str(TINY_TEXT))
    attackers = {"outsider": people.mallory, "viewer": dave, "staff": sam}
    return World(victim, own, attackers, people.alice)


def snapshot() -> str:
    """A digest of every row of every table but the sessions (signing in writes those)."""
    digest = hashlib.sha256()
    for model in sorted(apps.get_models(), key=lambda m: m._meta.label):
        if model is Session:
            continue
        for row in model.objects.order_by("pk").values_list():
            digest.update(repr((model._meta.label, row)).encode())
    return digest.hexdigest()
