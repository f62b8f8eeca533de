"""OpenID Connect single sign-on (mozilla-django-oidc), on only when configured.

The provider's groups claim maps to the two staff roles at every sign-in (users.sync_roles),
so a user removed from a group loses the role the next time they sign in. Sign-ins,
failures and new accounts go on the audit trail like local ones. LDAP: analysis/sso_ldap.py.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import Http404
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from analysis import audit, signin, users
from analysis.models import AuditEvent

Action = AuditEvent.Action


class OIDCBackend(OIDCAuthenticationBackend):
    def filter_users_by_claims(self, claims):
        username = claims.get(settings.OIDC_USERNAME_CLAIM)
        if not username:
            return self.UserModel.objects.none()
        return self.UserModel.objects.filter(username=username)

    def verify_claims(self, claims) -> bool:
        return bool(claims.get(settings.OIDC_USERNAME_CLAIM)) and super().verify_claims(claims)

    def create_user(self, claims):
        user = get_user_model().objects.create_user(
            claims[settings.OIDC_USERNAME_CLAIM], claims.get("email", "")
        )
        users.record_user_change(user, before=None, was_active=None, via="oidc")
        return self.update_user(user, claims)

    def update_user(self, user, claims):
        groups = {str(group).lower() for group in claims.get(settings.OIDC_GROUPS_CLAIM) or []}
        users.sync_roles(user, groups, settings.OIDC_ROLE_GROUPS, source="oidc")
        return user


class OIDCStartView(OIDCAuthenticationRequestView):
    def get(self, request):
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        return super().get(request)


class OIDCCallbackView(OIDCAuthenticationCallbackView):
    def get(self, request):
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        return super().get(request)

    def login_success(self):
        response = super().login_success()
        signin.mark_signed_in(self.request)
        audit.record(
            Action.SIGN_IN,
            actor=self.user,
            target=self.user,
            request=self.request,
            details={"backend": "OIDCBackend"},
        )
        return response

    def login_failure(self):
        audit.record(Action.SIGN_IN_FAILED, request=self.request, details={"backend": "oidc"})
        return super().login_failure()
