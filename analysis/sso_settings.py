"""django-auth-ldap's settings from environment variables (imported only when LDAP is on)."""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured


def ldap_settings(env: Mapping[str, str]) -> dict:
    try:
        import ldap
        from django_auth_ldap.config import (
            GroupOfNamesType,
            LDAPSearch,
            NestedActiveDirectoryGroupType,
        )
    except ImportError as exc:
        raise ImproperlyConfigured(
            "LDAP_SERVER_URI is set but django-auth-ldap is not installed: apt install "
            "libldap2-dev libsasl2-dev, then scripts/bootstrap (or pip install '.[ldap]')."
        ) from exc

    group_type = (
        NestedActiveDirectoryGroupType()
        if env.get("LDAP_GROUP_TYPE", "").lower() == "activedirectory"
        else GroupOfNamesType()
    )
    return {
        "AUTH_LDAP_SERVER_URI": env["LDAP_SERVER_URI"],
        "AUTH_LDAP_BIND_DN": env.get("LDAP_BIND_DN", ""),
        "AUTH_LDAP_BIND_PASSWORD": env.get("LDAP_BIND_PASSWORD", ""),
        "AUTH_LDAP_START_TLS": env.get("LDAP_START_TLS", "").lower() in ("1", "true", "yes"),
        "AUTH_LDAP_USER_SEARCH": LDAPSearch(
            env.get("LDAP_USER_BASE", ""),
            ldap.SCOPE_SUBTREE,
            env.get("LDAP_USER_FILTER", "(uid=%(user)s)"),
        ),
        "AUTH_LDAP_GROUP_SEARCH": LDAPSearch(
            env.get("LDAP_GROUP_BASE", ""),
            ldap.SCOPE_SUBTREE,
            env.get("LDAP_GROUP_FILTER", "(objectClass=groupOfNames)"),
        ),
        "AUTH_LDAP_GROUP_TYPE": group_type,
        "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        # Group membership is looked up at each sign-in, never cached: a removal counts next time.
        "AUTH_LDAP_CACHE_TIMEOUT": 0,
    }
