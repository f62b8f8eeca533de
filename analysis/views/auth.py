"""Sign-in and sign-out: Django's own views, plus one audit event for each outcome.

Recorded here explicitly rather than from the user_logged_in / user_login_failed signals
(no logic in signals), in the same transaction as the session change. django-axes counts
the failures and refuses a locked account or address before any password is checked.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.db import transaction
from django.http import HttpResponse

from analysis import audit, signin, streaming
from analysis.models import AuditEvent

Action = AuditEvent.Action
USERNAME_MAX = 150


class LoginView(auth_views.LoginView):
    # Django's form views take PUT as POST: here only the methods a sign-in form uses.
    http_method_names = ["get", "head", "post", "options"]

    def form_valid(self, form) -> HttpResponse:
        user = form.get_user()
        with transaction.atomic():
            response = super().form_valid(form)
            signin.mark_signed_in(self.request)
            audit.record(
                Action.SIGN_IN,
                actor=user,
                target=user,
                request=self.request,
                details={"backend": user.backend.rsplit(".", 1)[-1]},
            )
        return response

    def form_invalid(self, form) -> HttpResponse:
        # The name typed is kept (truncated): repeated failures against one account, or
        # many accounts from one address, are what an investigator looks for.
        username = str(form.data.get("username", ""))[:USERNAME_MAX]
        audit.record(
            Action.SIGN_IN_FAILED,
            target=_account(username),
            request=self.request,
            details={"username": username},
        )
        return super().form_invalid(form)

    def get_context_data(self, **kwargs) -> dict:
        from django.conf import settings

        return {**super().get_context_data(**kwargs), "oidc_enabled": settings.OIDC_ENABLED}


class LogoutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs) -> HttpResponse:
        user = request.user  # still signed in here; anonymous after super().post()
        session_key = request.session.session_key
        with transaction.atomic():
            if user.is_authenticated:
                audit.record(Action.SIGN_OUT, actor=user, target=user, request=request)
                user_id = user.pk
                # This session's sockets close now (the others re-check it within seconds).
                transaction.on_commit(lambda: streaming.close_user_sockets(user_id, session_key))
            return super().post(request, *args, **kwargs)


def _account(username: str):
    """The account a failed sign-in aimed at, when one by that name exists."""
    if not username:
        return None
    User = get_user_model()
    return User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()
