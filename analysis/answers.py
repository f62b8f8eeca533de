"""An answer as a reviewer reads it: safe Markdown, citations that open the evidence.

The model's text is untrusted. It is parsed as Markdown with raw HTML off (a `<script>` in
the answer stays text), then every tag and attribute goes through an allow-list sanitizer
(nh3, the Ammonia library): only the tags below survive, links only with http(s), mailto or
a relative address. Citations the prompt asks for — `[hh:mm:ss]`, `[mm:ss]`, ranges of
either, `[page N]` — become links to the item they cite: the case page's player seeks to the
time, a document opens at the page.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass

import nh3
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

_TIME = r"(?:\d{1,2}:)?\d{1,2}:\d{2}"
CITATION = re.compile(
    rf"\[(?P<start>{_TIME})(?:\s*(?:-|–|to)\s*(?P<end>{_TIME}))?\]|\[(?:page|p\.)\s*(?P<page>\d{{1,5}})\]",
    re.IGNORECASE,
)
_TAG = re.compile(r"(<[^>]*>)")
_OPENS = re.compile(r"<(a|code|pre)[\s>]")
_CLOSES = re.compile(r"</(a|code|pre)>")
TAGS = {
    "p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li",
    "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td", "del",
}  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title", "class", "data-seek", "data-end", "data-page", "data-asset"},
    "th": {"align"},
    "td": {"align"},
    "ol": {"start"},
}
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
    ["table", "strikethrough"]
)


@dataclass(frozen=True)
class Sources:
    """What a citation in one answer points at: the first timed item and first document."""

    case_id: str = ""
    timed_id: str = ""  # a video or audio item
    document_id: str = ""

    @classmethod
    def for_analysis(cls, analysis, items=None) -> Sources:
        items = list(items if items is not None else analysis.media.order_by("created_at", "pk"))
        timed = next((a for a in items if a.kind in ("video", "audio")), None)
        document = next((a for a in items if a.kind == "document"), None)
        return cls(
            case_id=str(analysis.case_id),
            timed_id=str(timed.pk) if timed else "",
            document_id=str(document.pk) if document else "",
        )

    def file_url(self, asset_id: str) -> str:
        return reverse("media-file", args=[self.case_id, asset_id])


def seconds(stamp: str) -> int:
    total = 0
    for part in stamp.split(":"):
        total = total * 60 + int(part)
    return total


def _citation_link(match: re.Match, sources: Sources) -> str:
    label = match.group(0)
    if match.group("page"):
        if not sources.document_id:
            return label
        page = int(match.group("page"))
        url = f"{sources.file_url(sources.document_id)}#page={page}"
        return f'<a class="cite" href="{url}" data-page="{page}" title="Open page">{label}</a>'
    if not sources.timed_id:
        return label
    start = seconds(match.group("start"))
    end = f' data-end="{seconds(match.group("end"))}"' if match.group("end") else ""
    url = f"{sources.file_url(sources.timed_id)}#t={start}"
    return (
        f'<a class="cite" href="{url}" data-seek="{start}"{end} '
        f'data-asset="{sources.timed_id}" title="Play from here">{label}</a>'
    )


def link_citations(markup: str, sources: Sources) -> str:
    """Citations in the text between tags become links; never inside a tag, a link or code."""
    out, inside = [], 0
    for piece in _TAG.split(markup):
        if piece.startswith("<"):
            if _OPENS.match(piece):
                inside += 1
            elif _CLOSES.match(piece):
                inside = max(0, inside - 1)
            out.append(piece)
        elif inside:
            out.append(piece)
        else:
            out.append(CITATION.sub(lambda m: _citation_link(m, sources), piece))
    return "".join(out)


def clean(markup: str) -> str:
    return nh3.clean(
        markup,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def render_markdown(text: str, sources: Sources) -> SafeString:
    return mark_safe(clean(link_citations(_markdown.render(text), sources)))  # noqa: S308


def structured_rows(text: str) -> list[dict] | None:
    """A structured answer's rows when it is a list of objects (or one object)."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return value
    return None


def render_table(rows: list[dict], sources: Sources) -> SafeString:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column, "")
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            cell = html.escape(text)
            if column in ("timestamp", "time", "start") and re.fullmatch(_TIME, text):
                cell = f"[{cell}]"  # a bare time code in a time column cites too
            cells.append(f"<td>{cell}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    markup = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return mark_safe(clean(link_citations(markup, sources)))  # noqa: S308


def render_answer(analysis, text: str, items=None) -> SafeString:
    """The HTML of an answer: a table for a structured one, else Markdown."""
    sources = Sources.for_analysis(analysis, items)
    if analysis.response_schema and (rows := structured_rows(text)) is not None:
        return render_table(rows, sources)
    return render_markdown(text, sources)
