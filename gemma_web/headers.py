"""Response headers every page of the site carries, beyond Django's SecurityMiddleware.

Nothing the app itself answers may be kept by a browser or a proxy: pages, JSON and media
all hold case data, and a shared or stolen computer must not have copies of it in a cache.
Static files are answered by WhiteNoise before this middleware and keep their long cache.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

NO_STORE = "private, no-store"


class SecurityHeaders(MiddlewareMixin):
    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response["Cache-Control"] = NO_STORE
        response.headers.pop("Expires", None)
        response.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response
