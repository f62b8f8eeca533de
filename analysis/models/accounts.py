"""What the site keeps about an account beyond Django's user: its invitation and whether the
password it holds was handed out by an admin (and so must be changed at first sign-in)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class Account(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account"
    )
    # Set when an admin hands out a temporary password; cleared by the user's own change.
    must_change_password = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"account of {self.user}"

    @classmethod
    def of(cls, user) -> Account:
        return cls.objects.get_or_create(user=user)[0]

    @classmethod
    def must_change(cls, user) -> bool:
        return cls.objects.filter(user=user, must_change_password=True).exists()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Invitation(models.Model):
    """A single-use link that lets a new (or reset) account choose its password.

    Only the SHA-256 of the token is kept: the database alone cannot be used to sign in.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations"
    )
    token_sha256 = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"invitation for {self.user} until {self.expires_at:%Y-%m-%d %H:%M}"

    @classmethod
    def issue(cls, *, user, created_by) -> tuple[Invitation, str]:
        """A new invitation and its token (shown once; earlier open links stop working)."""
        now = timezone.now()
        cls.objects.filter(user=user, used_at__isnull=True).update(expires_at=now)
        token = secrets.token_urlsafe(32)
        invitation = cls.objects.create(
            user=user,
            token_sha256=_digest(token),
            created_by=created_by,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.INVITE_SECONDS),
        )
        return invitation, token

    @classmethod
    def usable(cls, token: str):
        """The open invitation this token belongs to, for update, or None."""
        return (
            cls.objects.select_for_update()
            .filter(
                token_sha256=_digest(str(token)),
                used_at__isnull=True,
                expires_at__gt=timezone.now(),
                user__is_active=True,
            )
            .select_related("user")
            .first()
        )
