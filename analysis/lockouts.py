"""Who is locked out of signing in (django-axes' counts), and an admin's unlock."""

from __future__ import annotations

from datetime import timedelta

from axes.models import AccessAttempt
from axes.utils import reset
from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from analysis import audit
from analysis.models import AuditEvent


def _recent():
    since = timezone.now() - timedelta(hours=settings.AXES_COOLOFF_TIME)
    return AccessAttempt.objects.filter(attempt_time__gte=since)


def _locked(field: str) -> list[str]:
    rows = _recent().exclude(**{f"{field}__isnull": True}).values(field)
    rows = rows.annotate(n=Sum("failures_since_start")).filter(n__gte=settings.AXES_FAILURE_LIMIT)
    return sorted(row[field] for row in rows)


def locked_usernames() -> list[str]:
    return _locked("username")


def locked_addresses() -> list[str]:
    return _locked("ip_address")


def unlock(*, username: str | None = None, address: str | None = None, request=None) -> int:
    """Lift a lockout by account or by address; recorded even when nothing was locked."""
    if not username and not address:
        raise ValueError("Unlock an account or an address.")
    cleared = reset(username=username or None, ip=address or None)
    audit.record(
        AuditEvent.Action.SIGN_IN_UNLOCKED,
        request=request,
        details={"username": username or "", "address": address or "", "cleared": cleared},
    )
    return cleared
