from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from analysis import sso
from analysis.views import auth
from analysis.views import metrics as metrics_views

urlpatterns = [
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
    # The admin's own sign-in and sign-out would bypass the audit trail: send them to ours.
    path(
        "admin/login/",
        RedirectView.as_view(
            pattern_name="login", query_string=True, http_method_names=["get", "head"]
        ),
    ),
    path("admin/logout/", auth.LogoutView.as_view()),
    path("admin/", admin.site.urls),
    # OpenID Connect sign-in (404 unless configured); the names are mozilla-django-oidc's.
    path("oidc/authenticate/", sso.OIDCStartView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", sso.OIDCCallbackView.as_view(), name="oidc_authentication_callback"),
    # Prometheus' default path; staff or the scrape token only (analysis/views/metrics.py).
    path("metrics", metrics_views.metrics_page, name="metrics"),
    path("", include("analysis.urls")),
]
