"""LDAP / Active Directory sign-in (django-auth-ldap), on only when LDAP_SERVER_URI is set.

Directory groups map to the two staff roles at every sign-in (users.sync_roles): a user
removed from a group loses the role the next time they sign in. New accounts are recorded
like any other; the sign-in itself is recorded by the login view.
"""

from __future__ import annotations

from django.conf import settings
from django_auth_ldap.backend import LDAPBackend as BaseLDAPBackend

from analysis import users


class LDAPBackend(BaseLDAPBackend):
    def get_or_build_user(self, username, ldap_user):
        user, built = super().get_or_build_user(username, ldap_user)
        ldap_user.gemma_built = built
        return user, built

    def authenticate_ldap_user(self, ldap_user, password):
        user = super().authenticate_ldap_user(ldap_user, password)
        if user is not None:
            if getattr(ldap_user, "gemma_built", False):
                users.record_user_change(user, before=None, was_active=None, via="ldap")
            groups = {dn.lower() for dn in ldap_user.group_dns}
            users.sync_roles(user, groups, settings.LDAP_ROLE_GROUPS, source="ldap")
        return user
