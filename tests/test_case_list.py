"""My cases: search, filter, pagination, and a query count that does not grow with the list."""

from __future__ import annotations

import pytest
from django.urls import reverse

from analysis.models import Case, Membership

pytestmark = pytest.mark.django_db


def make_cases(user, n, **fields):
    cases = Case.objects.bulk_create(
        [
            Case(title=f"Case {i}", reference=f"REF-{i:05d}", created_by=user, **fields)
            for i in range(n)
        ]
    )
    Membership.objects.bulk_create(
        [Membership(case=c, user=user, role=Membership.Role.VIEWER) for c in cases]
    )
    return cases


def test_it_lists_only_my_cases(client, people):
    client.force_login(people.mallory)
    make_cases(people.mallory, 2)
    page = client.get(reverse("case-list")).content.decode()
    assert "Case 0" in page and people.case.title not in page


def test_it_searches_title_and_reference(client, people):
    client.force_login(people.alice)
    make_cases(people.alice, 3)
    page = client.get(reverse("case-list"), {"q": "ref-00002"}).content.decode()
    assert "Case 2" in page and "Case 1<" not in page
    page = client.get(reverse("case-list"), {"q": "transaction"}).content.decode()
    assert people.case.title in page and "Case 0" not in page


def test_it_filters_by_status(client, people):
    client.force_login(people.alice)
    make_cases(people.alice, 2, status=Case.Status.CLOSED)
    page = client.get(reverse("case-list"), {"status": "closed"}).content.decode()
    assert "Case 0" in page and people.case.title not in page


def test_it_paginates(client, people, settings):
    settings.CASES_PER_PAGE = 5
    client.force_login(people.alice)
    make_cases(people.alice, 12)
    page = client.get(reverse("case-list"), {"page": 3}).content.decode()
    assert "Page 3 of 3" in page


@pytest.mark.parametrize("n", [3, 60])
def test_the_query_count_does_not_grow_with_the_cases(
    client, people, n, django_assert_max_num_queries
):
    make_cases(people.alice, n)
    client.force_login(people.alice)
    client.get(reverse("case-list"))  # the session's first request settles sign-in checks
    # session + user + count + page, the owners' break-glass notice and the nav's permission
    # lookup (user, groups): the same for 3 cases and for 60.
    with django_assert_max_num_queries(7):
        assert client.get(reverse("case-list")).status_code == 200


def test_staff_see_metadata_of_all_cases_but_no_answers(client, people):
    people.case.analyses.create(created_by=people.bob, question="Secret?", answer="Hidden answer")
    client.force_login(people.admin)
    from tests.media_api import make_asset
    from tests.media_samples import image

    make_asset(people.case, people.bob, image("png"), "scan.png")
    page = client.get(reverse("staff-case-list")).content.decode()
    assert people.case.title in page and "alice" in page
    assert "1 · " in page and "scan.png" not in page  # one item and its size, not its name
    assert "Hidden answer" not in page and "Secret?" not in page


def test_non_staff_do_not_get_the_staff_page(client, people):
    client.force_login(people.alice)
    assert client.get(reverse("staff-case-list")).status_code == 404


def test_break_glass_needs_a_reason_and_opens_read_access(client, people):
    client.force_login(people.admin)
    url = reverse("break-glass", args=[people.case.id])
    assert client.post(url, {"reason": "no"}).status_code == 200  # too short, nothing opened
    assert client.get(reverse("case-detail", args=[people.case.id])).status_code == 404
    client.post(url, {"reason": "Court order 2026/118, exhibit review"})
    page = client.get(reverse("case-detail", args=[people.case.id])).content.decode()
    assert "Break-glass access" in page and "Court order 2026/118" in page
