"""What a signed-in session must still satisfy, on every request and on every live socket.

A session ends on its absolute lifetime (SESSION_MAX_SECONDS; the idle timeout is the
session cookie's age, pushed forward by each request). Until the user has changed a
temporary password, or passed the second factor where they have one or the site requires
one, the session reaches only the pages that settle that. Lockouts (django-axes) are
answered and recorded here too.
"""

from __future__ import annotations

import enum
import time
from importlib import import_module

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, logout
from django.contrib.sessions.models import Session
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.deprecation import MiddlewareMixin
from django.utils.http import urlencode
from django_otp import DEVICE_ID_SESSION_KEY, devices_for_user

from analysis import access, audit
from analysis.models import Account, AuditEvent

# Seconds since the epoch when the session signed in, for the absolute lifetime.
SIGNED_IN_AT = "gemma_signed_in_at"
# When the idle expiry was last pushed forward: at most once a minute, not a write per request.
REFRESHED_AT = "gemma_refreshed_at"
REFRESH_EVERY = 60
# Set once nothing is left to settle (password, second factor): later requests skip those
# queries. Whatever could unsettle a session (a reset, a removed device) ends it instead.
SETTLED = "gemma_settled"


class Problem(enum.StrEnum):
    SIGNED_OUT = "signed_out"
    EXPIRED = "expired"
    MUST_CHANGE_PASSWORD = "must_change_password"  # noqa: S105 - a state, not a secret
    NEEDS_ENROLMENT = "needs_enrolment"
    NEEDS_VERIFICATION = "needs_verification"


def client_ip(request) -> str | None:
    return audit.client_of(request)[0]


def two_factor_required(user) -> bool:
    policy = settings.TWO_FACTOR_REQUIRED
    if policy == "all":
        return True
    return policy == "staff" and (access.is_staff(user) or access.is_auditor(user))


def has_device(user) -> bool:
    return any(True for _ in devices_for_user(user, confirmed=True))


def session_problem(user, data) -> Problem | None:
    """Why a session (its stored data) may not use the site now; None when it may."""
    if str(data.get(SESSION_KEY, "")) != str(user.pk):
        return Problem.SIGNED_OUT
    if not constant_time_compare(data.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()):
        return Problem.SIGNED_OUT  # the password changed since
    signed_in_at = data.get(SIGNED_IN_AT)
    if signed_in_at is not None and time.time() - signed_in_at > settings.SESSION_MAX_SECONDS:
        return Problem.EXPIRED
    if Account.must_change(user):
        return Problem.MUST_CHANGE_PASSWORD
    if not _verified(data):
        if has_device(user):
            return Problem.NEEDS_VERIFICATION
        if two_factor_required(user):
            return Problem.NEEDS_ENROLMENT
    return None


def _verified(data) -> bool:
    from django_otp.models import Device

    device_id = data.get(DEVICE_ID_SESSION_KEY)
    return bool(device_id) and Device.from_persistent_id(device_id) is not None


def stored_session_problem(user, session_key: str) -> Problem | None:
    """The same, reading the session afresh from its store (a socket's cached copy is old)."""
    data = import_module(settings.SESSION_ENGINE).SessionStore(session_key).load()
    return session_problem(user, data) if data else Problem.SIGNED_OUT


def mark_signed_in(request: HttpRequest) -> None:
    """Called right after login(): the absolute lifetime counts from here, and nothing of an
    earlier sign-in of this browser counts as settled."""
    request.session[SIGNED_IN_AT] = time.time()
    request.session.pop(SETTLED, None)


def end_sessions(user) -> int:
    """Delete every live session of `user` (deactivated, password reset)."""
    ended = 0
    live = Session.objects.filter(expire_date__gt=timezone.now())
    for session in live.iterator():
        if str(session.get_decoded().get(SESSION_KEY, "")) == str(user.pk):
            session.delete()
            ended += 1
    return ended


# Where a session with an unsettled problem may still go.
SETTLING_VIEWS = {
    Problem.MUST_CHANGE_PASSWORD: "password-change-required",
    Problem.NEEDS_ENROLMENT: "two-factor-enrol",
    Problem.NEEDS_VERIFICATION: "two-factor-verify",
}
ALWAYS_OPEN = {"logout", "login"}


class SignInGateMiddleware(MiddlewareMixin):
    """A process_request hook, so the upload fast path (gemma_web/upload_patch.py) runs it too:
    a session that has not passed its second factor sends no upload bytes either."""

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        session, now = request.session, time.time()
        session.setdefault(SIGNED_IN_AT, now)
        if now - session.get(REFRESHED_AT, 0) >= REFRESH_EVERY:
            session[REFRESHED_AT] = now  # saved with a new expiry: the idle timeout restarts
        # Settled under today's two-factor policy: a stricter one re-checks every session.
        settled = session.get(SETTLED) == settings.TWO_FACTOR_REQUIRED
        if settled and now - session[SIGNED_IN_AT] <= settings.SESSION_MAX_SECONDS:
            return None
        problem = session_problem(user, session)
        if problem is None:
            session[SETTLED] = settings.TWO_FACTOR_REQUIRED
        if problem is None or _is_static(request):
            return None
        if problem in (Problem.EXPIRED, Problem.SIGNED_OUT):
            return _expired(request, user)
        match = request.resolver_match or _resolve(request)
        if match is not None and match.url_name in {SETTLING_VIEWS[problem], *ALWAYS_OPEN}:
            return None
        target = reverse(SETTLING_VIEWS[problem])
        if request.method == "GET":
            target += "?" + urlencode({"next": request.get_full_path()})
        return redirect(target)


def _is_static(request: HttpRequest) -> bool:
    return request.path.startswith("/" + settings.STATIC_URL.lstrip("/"))


def _resolve(request: HttpRequest):
    from django.urls import Resolver404, resolve

    try:
        return resolve(request.path_info)
    except Resolver404:
        return None


def _expired(request: HttpRequest, user) -> HttpResponse:
    audit.record(AuditEvent.Action.SESSION_EXPIRED, actor=user, target=user, request=request)
    logout(request)
    return redirect(reverse("login") + "?" + urlencode({"next": request.get_full_path()}))


def locked_out(request, original_response=None, credentials=None) -> HttpResponse:
    """django-axes refused a sign-in: say so plainly, and put it on the audit trail."""
    username = str((credentials or {}).get("username") or request.POST.get("username", ""))
    audit.record(
        AuditEvent.Action.SIGN_IN_LOCKED_OUT,
        request=request,
        details={"username": username[:150], "address": client_ip(request)},
    )
    context = {"hours": settings.AXES_COOLOFF_TIME}
    return render(request, "registration/locked_out.html", context, status=429)
