"""The Prometheus scrape endpoint: staff, or a scraper holding METRICS_TOKEN."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from analysis import access, metrics


@require_safe
def metrics_page(request: HttpRequest) -> HttpResponse:
    """Counters and gauges of the whole site (no case data, no names but workers').

    Not behind login_required: a scraper has no session, and a redirect to the sign-in page
    would tell an outsider the page exists. Everyone else gets the site's usual 404.
    """
    if not (_holds_token(request) or access.is_staff(request.user)):
        raise Http404("No such page.")
    return HttpResponse(metrics.exposition(), content_type=metrics.CONTENT_TYPE)


def _holds_token(request: HttpRequest) -> bool:
    expected = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    # Constant time: the comparison must not tell a guesser how much of the token was right.
    return hmac.compare_digest(given.strip().encode(), expected.encode())
