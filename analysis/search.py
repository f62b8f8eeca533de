"""Full-text search across the cases a user may see.

The index is the database's own. On PostgreSQL: a GIN index over a stored generated column
`search_tsv = to_tsvector('english', title || ' ' || body)`, ranked with ts_rank and
highlighted with ts_headline. On SQLite: an FTS5 table over the same rows (kept in step by
triggers), ranked with bm25() and highlighted with snippet(). Both are created by the
migration; neither query scans with LIKE. What a row points at (an answer, a document page,
a note's time code) is kept on the row, so a hit links to the exact place.

Indexing is called explicitly by the code that changes the source (case saved, item
processed or deleted, answer finished, note added), never from signals.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from django.db import connection, transaction
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from analysis import access
from analysis.media import storage
from analysis.models import Analysis, Case, MediaAsset, ReviewNote, SearchEntry

Kind = SearchEntry.Kind
PAGE_CHARS = 20_000  # characters of one page (or text file) indexed: search, not archive
RESULTS = 50
# Private-use characters mark highlights inside the database's snippet; the text around
# them is escaped before they become <mark>, so no stored text reaches the page as markup.
OPEN, CLOSE = "\ue000", "\ue001"
WORD = re.compile(r"\w+", re.UNICODE)


# --- keeping the index -------------------------------------------------------------------------


def _replace(rows: list[SearchEntry], **owner) -> None:
    with transaction.atomic():
        SearchEntry.objects.filter(**owner).delete()
        SearchEntry.objects.bulk_create(rows)


def index_case(case: Case) -> None:
    body = " ".join(filter(None, [case.reference or "", case.description]))
    rows = [SearchEntry(case=case, kind=Kind.CASE, title=case.title, body=body)]
    _replace(rows, case=case, kind=Kind.CASE)


def index_media(asset: MediaAsset) -> None:
    """The item's name, and for a document the text of each page."""
    if asset.is_deleted:
        _replace([], media=asset)
        return
    # The name's parts as words too: PostgreSQL's parser takes "contract-v2.pdf" for one token.
    words = " ".join(WORD.findall(asset.filename.replace("_", " ")))
    rows = [
        SearchEntry(
            case_id=asset.case_id, kind=Kind.MEDIA, media=asset, title=asset.filename, body=words
        )
    ]
    for number, text in enumerate(document_pages(asset), start=1):
        if text.strip():
            rows.append(
                SearchEntry(
                    case_id=asset.case_id,
                    kind=Kind.PAGE,
                    media=asset,
                    page=number,
                    title=f"{asset.filename}, page {number}",
                    body=text[:PAGE_CHARS],
                )
            )
    _replace(rows, media=asset, note=None)


def document_pages(asset: MediaAsset) -> list[str]:
    """Extracted page texts of a PDF, or a text file as its one page; [] for other kinds."""
    if asset.kind != "document" or not asset.is_ready:
        return []
    try:
        if asset.mime == "application/pdf" and asset.derived.get("text"):
            data = storage.read_derived(asset.id, asset.derived["text"])
            return [str(t) for t in json.loads(data.decode("utf-8"))]
        if asset.mime == "text/plain":
            head = storage.read_original_head(asset.case_id, asset.id, PAGE_CHARS * 4)
            return [head.decode("utf-8", errors="replace")]
    except (OSError, ValueError):
        pass
    return []


def index_analysis(analysis: Analysis) -> None:
    rows = []
    if analysis.status == Analysis.Status.SUCCEEDED:
        rows.append(
            SearchEntry(
                case_id=analysis.case_id,
                kind=Kind.ANSWER,
                analysis=analysis,
                title=analysis.question[:300],
                body=f"{analysis.question}\n{analysis.answer}",
            )
        )
    _replace(rows, analysis=analysis, note=None)


def index_note(note: ReviewNote) -> None:
    SearchEntry.objects.create(
        case_id=note.case_id,
        kind=Kind.NOTE,
        note=note,
        media_id=note.media_id,
        analysis_id=note.analysis_id,
        at_seconds=note.start_seconds,
        title=f"Note by {note.author.get_username()}",
        body=note.text,
    )


# --- querying ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    entry: SearchEntry
    snippet: SafeString
    rank: float

    @property
    def url(self) -> str:
        return link_for(self.entry)


def search(user, query: str, limit: int = RESULTS) -> list[Hit]:
    """Ranked hits for `query` in the cases `user` is a member of (never any other case)."""
    if not WORD.search(query or ""):
        return []
    case_ids = [str(pk) for pk in access.visible_cases(user).values_list("pk", flat=True)]
    if not case_ids:
        return []
    if connection.vendor == "postgresql":
        rows = _postgres(query, case_ids, limit)
    else:
        rows = _sqlite(query, case_ids, limit)
    entries = SearchEntry.objects.select_related("case", "media").in_bulk([r[0] for r in rows])
    return [Hit(entries[pk], _marked(snippet), rank) for pk, rank, snippet in rows if pk in entries]


def fts5_query(query: str) -> str:
    """The user's words as FTS5 phrases (quoted: no operator syntax leaks through), ANDed;
    the last word also matches as a prefix, so a half-typed word finds something."""
    words = WORD.findall(query)[:20]
    terms = [f'"{w}"' for w in words]
    terms[-1] += "*"
    return " ".join(terms)


def _sqlite(query: str, case_ids: list[str], limit: int) -> list[tuple]:
    """Rank first (bm25 over the matches in visible cases), then cut snippets for the best
    `limit` only: a snippet costs far more than a rank."""
    marks = ",".join("%s" for _ in case_ids)
    ranked_sql = f"""
        SELECT f.rowid, bm25(analysis_search_fts, 2.0, 1.0) AS rank
        FROM analysis_search_fts f JOIN analysis_searchentry e ON e.id = f.rowid
        WHERE analysis_search_fts MATCH %s AND e.case_id IN ({marks})
        ORDER BY rank LIMIT %s"""  # noqa: S608 (only placeholders are formatted in)
    # Django keeps UUIDs on SQLite as 32 hex characters.
    ids = [c.replace("-", "") for c in case_ids]
    match = fts5_query(query)
    with connection.cursor() as cur:
        cur.execute(ranked_sql, [match, *ids, limit])
        ranked = cur.fetchall()
        if not ranked:
            return []
        found = ",".join("%s" for _ in ranked)
        cur.execute(
            f"""SELECT rowid, snippet(analysis_search_fts, 1, %s, %s, '…', 24),
                       highlight(analysis_search_fts, 0, %s, %s)
                FROM analysis_search_fts WHERE analysis_search_fts MATCH %s
                AND rowid IN ({found})""",  # noqa: S608 (only placeholders are formatted in)
            [OPEN, CLOSE, OPEN, CLOSE, match, *[pk for pk, _ in ranked]],
        )
        snippets = {pk: (snip if OPEN in snip else title) for pk, snip, title in cur}
    return [(pk, -rank, snippets.get(pk, "")) for pk, rank in ranked]


def _postgres(query: str, case_ids: list[str], limit: int) -> list[tuple]:
    """Rank in the inner query (GIN finds the matches), headline only the best `limit`."""
    sql = """
        SELECT e.id, best.rank,
               ts_headline('english', e.title || ' — ' || e.body, q,
                           'StartSel=' || %s || ', StopSel=' || %s
                           || ', MaxWords=30, MinWords=10, MaxFragments=2')
        FROM (
            SELECT e.id, ts_rank(e.search_tsv, q) AS rank
            FROM analysis_searchentry e, websearch_to_tsquery('english', %s) q
            WHERE e.search_tsv @@ q
              AND e.case_id = ANY(%s::uuid[])
            ORDER BY rank DESC, e.id LIMIT %s
        ) best
        JOIN analysis_searchentry e ON e.id = best.id, websearch_to_tsquery('english', %s) q
        ORDER BY best.rank DESC, e.id"""
    with connection.cursor() as cur:
        cur.execute(sql, [OPEN, CLOSE, query, case_ids, limit, query])
        return list(cur.fetchall())


def _marked(snippet: str) -> SafeString:
    text = escape(snippet or "")
    return mark_safe(text.replace(OPEN, "<mark>").replace(CLOSE, "</mark>"))  # noqa: S308


def link_for(entry: SearchEntry) -> str:
    case_url = reverse("case-detail", args=[entry.case_id])
    if entry.kind == Kind.ANSWER or (entry.kind == Kind.NOTE and entry.analysis_id):
        return f"{case_url}#analysis-{entry.analysis_id}"
    if entry.media_id is None:
        return case_url
    media_url = reverse("media-detail", args=[entry.case_id, entry.media_id])
    if entry.kind == Kind.PAGE:
        return f"{media_url}#page-{entry.page}"
    if entry.at_seconds is not None:
        return f"{media_url}#t={entry.at_seconds:g}"
    return media_url
