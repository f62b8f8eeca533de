"""The signed-in user's own account: a forced password change, accepting an invitation,
and the second factor (enrol with a QR code, verify at sign-in, recovery codes)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login

from analysis import audit, twofactor
from analysis.models import Account, AuditEvent, Invitation

Action = AuditEvent.Action


class CodeForm(forms.Form):
    code = forms.CharField(
        max_length=32,
        label="Code",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text"}),
    )


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure())
    return target if safe and target else settings.LOGIN_REDIRECT_URL


@login_required
@require_http_methods(["GET", "POST"])
def password_change_required(request: HttpRequest) -> HttpResponse:
    """A temporary password from an admin must be replaced before anything else."""
    form = SetPasswordForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
            Account.objects.filter(user=user).update(must_change_password=False)
            audit.record(Action.PASSWORD_CHANGED, target=user, request=request)
        update_session_auth_hash(request, user)
        messages.success(request, "Password changed.")
        return redirect(_next(request))
    return render(request, "registration/password_change_required.html", {"form": form})


@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """A single-use link: choose a password, then sign in with it."""
    with transaction.atomic():
        invitation = Invitation.usable(token)
        if invitation is None:
            return render(request, "registration/invitation_invalid.html", status=404)
        form = SetPasswordForm(invitation.user, request.POST or None)
        if request.method == "POST" and form.is_valid():
            user = form.save()
            invitation.used_at = timezone.now()
            invitation.save(update_fields=["used_at"])
            Account.objects.filter(user=user).update(must_change_password=False)
            audit.record(Action.INVITATION_ACCEPTED, actor=user, target=user, request=request)
            messages.success(request, "Password set. Sign in with it now.")
            return redirect("login")
    context = {"form": form, "invited": invitation.user}
    return render(request, "registration/invitation_accept.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def two_factor_enrol(request: HttpRequest) -> HttpResponse:
    """Scan the QR code, type the code the app shows; recovery codes are shown once."""
    if twofactor.has_confirmed_authenticator(request.user):
        return render(request, "registration/two_factor_on.html")
    device = twofactor.pending_device(request.user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = twofactor.confirm(device, form.cleaned_data["code"])
        if codes is not None:
            otp_login(request, device)
            audit.record(Action.TWO_FACTOR_ENROLLED, target=request.user, request=request)
            context = {"codes": codes, "next": _next(request)}
            return render(request, "registration/recovery_codes.html", context)
        form.add_error("code", "That code is not the one the app shows now. Try again.")
    context = {
        "form": form,
        "qr": twofactor.qr_svg(device),
        "secret": twofactor.secret_base32(device),
        "next": request.GET.get("next", ""),
    }
    return render(request, "registration/two_factor_enrol.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    """The second step of sign-in: a code from the authenticator, or one recovery code."""
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = twofactor.check(request.user, form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            recovery = twofactor.is_recovery(device)
            action = Action.RECOVERY_CODE_USED if recovery else Action.TWO_FACTOR_VERIFIED
            audit.record(action, target=request.user, request=request)
            if recovery:
                messages.warning(request, "Recovery code used; it will not work again.")
            return redirect(_next(request))
        audit.record(Action.TWO_FACTOR_FAILED, target=request.user, request=request)
        form.add_error("code", "That code was not accepted.")
    context = {"form": form, "next": request.GET.get("next", "")}
    return render(request, "registration/two_factor_verify.html", context)
