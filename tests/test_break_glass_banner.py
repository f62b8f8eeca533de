"""The wall, visible: while break-glass is open every member sees who, why and until when, on
the case page and every page under it; owners get a notice; the audit page shows it."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from analysis.models import BreakGlass
from tests.media_api import make_asset
from tests.media_samples import image

pytestmark = pytest.mark.django_db
REASON = "Regulator request 77-B"


@pytest.fixture
def opened(people):
    """Break-glass opened by the admin through the real form."""
    admin = Client()
    admin.force_login(people.admin)
    response = admin.post(reverse("break-glass", args=[people.case.id]), {"reason": REASON})
    assert response.status_code == 302
    return BreakGlass.objects.get(case=people.case)


def pages_under_the_case(people) -> list[str]:
    # (An analysis URL answers with its card, a fragment inside the case page.)
    case = people.case.id
    asset = make_asset(people.case, people.alice, image("png"), "scene.png")
    return [
        reverse("case-detail", args=[case]),
        reverse("member-list", args=[case]),
        reverse("case-audit", args=[case]),
        reverse("media-detail", args=[case, asset.id]),
    ]


def banner(page: str) -> bool:
    return 'class="banner warn break-glass"' in page and "admin" in page and REASON in page


@pytest.mark.parametrize("who", ["alice", "bob", "carol"])
def test_every_member_sees_the_banner_on_every_page_of_the_case(people, opened, who):
    client = Client()
    client.force_login(getattr(people, who))
    for url in pages_under_the_case(people):
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert banner(page), f"no break-glass banner for {who} on {url}"
        assert opened.expires_at.strftime("%Y-%m-%d %H:%M") in page


def test_the_banner_goes_when_the_grant_lapses(people, opened):
    BreakGlass.objects.filter(pk=opened.pk).update(expires_at=opened.opened_at)
    client = Client()
    client.force_login(people.carol)
    page = client.get(reverse("case-detail", args=[people.case.id])).content.decode()
    assert not banner(page)


def test_the_holder_sees_their_own_grant(people, opened):
    client = Client()
    client.force_login(people.admin)
    page = client.get(reverse("case-detail", args=[people.case.id])).content.decode()
    assert "You have break-glass access" in page and REASON in page


def test_owners_get_a_notice_elsewhere_in_the_app(people, opened):
    client = Client()
    client.force_login(people.alice)
    page = client.get(reverse("case-list")).content.decode()
    assert 'class="banner warn owner-notice"' in page and REASON in page
    reviewer = Client()
    reviewer.force_login(people.bob)
    assert "owner-notice" not in reviewer.get(reverse("case-list")).content.decode()


@pytest.mark.parametrize("who", ["bob", "carol"])
def test_reviewers_and_viewers_read_it_on_the_audit_page(people, opened, who):
    client = Client()
    client.force_login(getattr(people, who))
    page = client.get(reverse("case-audit", args=[people.case.id])).content.decode()
    assert "Break-glass opened" in page and REASON in page


def test_outsiders_see_nothing_of_it(people, opened):
    client = Client()
    client.force_login(people.mallory)
    assert client.get(reverse("case-detail", args=[people.case.id])).status_code == 404
    assert REASON not in client.get(reverse("case-list")).content.decode()
