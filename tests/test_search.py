"""Search: the database's full-text index (FTS5 / PostgreSQL), never a hit from a case one
may not see, and links to the exact place."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from analysis import search
from analysis.models import Analysis, Case, Membership, SearchEntry
from tests import media_samples as samples
from tests.media_api import make_asset

pytestmark = pytest.mark.django_db

WORDS = ["invoice", "forklift", "contract", "seatbelt", "Transaction"]


def _answer(case, user, question: str, answer: str) -> Analysis:
    analysis = Analysis.objects.create(case=case, created_by=user, question=question)
    analysis.succeed(answer, prompt_tokens=3, completion_tokens=3)
    search.index_analysis(analysis)
    return analysis


@pytest.fixture
def world(people):
    """alice's case and mallory's case hold the same words in every kind of entry."""
    other = Case.create_with_owner(user=people.mallory, title="Transaction elsewhere")
    search.index_case(people.case)
    search.index_case(other)
    for case, owner in ((people.case, people.alice), (other, people.mallory)):
        make_asset(case, owner, samples.pdf(["The invoice total.", "A forklift at the dock."]),
                   f"contract-{owner.username}.pdf")  # fmt: skip
        make_asset(case, owner, b"The seatbelt was fastened.\n", "statement.txt")
        _answer(case, owner, "What is at the dock?", "A forklift [00:00:03], per the invoice.")
    return people, other


def test_it_finds_document_text_and_links_to_the_page(world):
    people, _ = world
    hits = search.search(people.alice, "forklift")
    pages = [h for h in hits if h.entry.kind == SearchEntry.Kind.PAGE]
    assert len(pages) == 1 and pages[0].entry.page == 2
    media = pages[0].entry.media
    assert pages[0].url == reverse("media-detail", args=[people.case.id, media.id]) + "#page-2"
    assert "<mark>" in pages[0].snippet and "forklift" in pages[0].snippet.lower()


def test_it_finds_answers_media_names_cases_and_plain_text(world):
    people, _ = world
    kinds = {h.entry.kind for h in search.search(people.alice, "forklift")}
    assert {"answer", "page"} <= kinds
    assert [h.entry.kind for h in search.search(people.alice, "seatbelt")] == ["page"]
    assert "media" in {h.entry.kind for h in search.search(people.alice, "contract")}
    case_hits = [h for h in search.search(people.alice, "2026-CMP-0001") if h.entry.kind == "case"]
    assert case_hits and case_hits[0].url == reverse("case-detail", args=[people.case.id])
    answer = next(h for h in search.search(people.alice, "dock") if h.entry.kind == "answer")
    assert answer.url.endswith(f"#analysis-{answer.entry.analysis_id}")


@pytest.mark.parametrize("word", WORDS)
def test_no_hit_ever_comes_from_a_case_the_user_may_not_see(world, word):
    people, other = world
    users = [people.alice, people.bob, people.carol, people.mallory, people.admin]
    for user in users:
        visible = set(Membership.objects.filter(user=user).values_list("case_id", flat=True))
        for hit in search.search(user, word):
            assert hit.entry.case_id in visible, (user, word, hit.entry)
    # admin is staff but a member of nothing: staff rights open no search.
    assert search.search(people.admin, word) == []
    # alice and mallory each find their own copy, and only theirs.
    assert {h.entry.case_id for h in search.search(people.alice, word)} == {people.case.id}
    assert {h.entry.case_id for h in search.search(people.mallory, word)} == {other.id}


def test_a_deleted_item_leaves_the_index(world):
    from analysis.media import removal

    people, _ = world
    asset = people.case.media.get(filename="statement.txt")
    removal.delete(asset, user=people.alice)
    assert search.search(people.alice, "seatbelt") == []


def test_markup_and_query_syntax_in_the_words_are_harmless(world):
    people, _ = world
    _answer(people.case, people.alice, "Odd?", "The <script>alert(1)</script> zeppelin")
    for query in ['"', "AND OR NOT", "forklift*)(", "NEAR(", "-", "<b>"]:
        search.search(people.alice, query)  # never an error
    hits = search.search(people.alice, "zeppelin")
    html = "".join(h.snippet for h in hits)
    assert hits and "<script>" not in html and "<mark>" in html


def test_the_query_uses_the_full_text_index(world):
    people, _ = world
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SET enable_seqscan = off")
            cur.execute(
                "EXPLAIN SELECT id FROM analysis_searchentry "
                "WHERE search_tsv @@ websearch_to_tsquery('english', %s)",
                ["forklift"],
            )
            plan = " ".join(r[0] for r in cur.fetchall())
            cur.execute("SET enable_seqscan = on")
            assert "analysis_search_tsv" in plan
        else:
            cur.execute(
                "EXPLAIN QUERY PLAN SELECT rowid FROM analysis_search_fts "
                "WHERE analysis_search_fts MATCH %s",
                ['"forklift"'],
            )
            plan = " ".join(str(r[-1]) for r in cur.fetchall())
            assert "VIRTUAL TABLE INDEX" in plan


def test_the_search_page_shows_highlighted_hits(client, world):
    people, _ = world
    client.force_login(people.bob)
    page = client.get(reverse("search"), {"q": "forklift"}).content.decode()
    assert "<mark>forklift</mark>" in page.lower() or "<mark>Forklift</mark>" in page
    assert "Transaction elsewhere" not in page
    empty = client.get(reverse("search"), {"q": "hovercraft"}).content.decode()
    assert "Nothing found for" in empty


def test_rebuild_search_index_restores_what_was_lost(world):
    from django.core.management import call_command

    people, _ = world
    before = sorted(SearchEntry.objects.values_list("kind", "title"))
    SearchEntry.objects.all().delete()
    assert search.search(people.alice, "forklift") == []
    call_command("rebuild_search_index", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert sorted(SearchEntry.objects.values_list("kind", "title")) == before
    assert search.search(people.alice, "forklift")
