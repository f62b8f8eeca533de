"""Answers render as safe Markdown on the server; citations link to the evidence."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

from analysis.answers import render_answer, seconds

CASE = uuid.uuid4()
VIDEO = SimpleNamespace(pk=uuid.uuid4(), kind="video")
PDF = SimpleNamespace(pk=uuid.uuid4(), kind="document")


def render(text: str, *items, schema=None) -> str:
    analysis = SimpleNamespace(case_id=CASE, response_schema=schema)
    return str(render_answer(analysis, text, list(items)))


def test_it_renders_markdown():
    html = render(
        "**Two** findings:\n\n- a door opens\n- `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    assert "<strong>Two</strong>" in html and "<li>a door opens</li>" in html
    assert "<code>code</code>" in html and "<td>1</td>" in html


def test_raw_html_from_the_model_stays_text():
    html = render('<script>alert(1)</script> <img src=x onerror="alert(2)"> <b>bold</b>')
    assert "<script" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html  # shown as the text it is


def test_dangerous_links_lose_their_address():
    html = render(
        "[click](javascript:alert(1)) [data](data:text/html;base64,PHNjcmlwdD4=) "
        "<javascript:alert(3)> [ok](https://example.org/a)"
    )
    assert 'href="javascript:' not in html and 'href="data:' not in html
    assert html.count("<a ") == 1  # the refused ones stay inert text
    assert 'href="https://example.org/a"' in html and 'rel="noopener noreferrer nofollow"' in html


def test_time_codes_in_an_answer_about_a_video_seek_its_player():
    html = render("At [00:00:03] a door opens; [01:05] a car; [00:10 - 00:12] noise.", VIDEO)
    file_url = f"/cases/{CASE}/media/{VIDEO.pk}/file"
    assert f'href="{file_url}#t=3" data-seek="3"' in html
    assert 'data-seek="65"' in html
    assert 'data-seek="10" data-end="12"' in html
    assert f'data-asset="{VIDEO.pk}"' in html


def test_page_citations_open_the_document_at_the_page():
    html = render("The total is due [page 3].", PDF)
    assert f'href="/cases/{CASE}/media/{PDF.pk}/file#page=3" data-page="3"' in html


def test_citations_without_an_item_to_point_at_stay_text():
    html = render("At [00:00:03] and [page 2].")
    assert "<a" not in html and "[00:00:03]" in html and "[page 2]" in html


def test_citations_inside_code_and_links_are_left_alone():
    html = render("[see](https://example.org/x) and `[00:00:04]`", VIDEO)
    assert html.count("<a ") == 1  # only the model's own link, and it is not nested


def test_a_structured_answer_is_a_table_and_its_times_are_links():
    text = '[{"timestamp": "00:00:03", "finding": "<b>door</b>", "severity": "high"}]'
    html = render(text, VIDEO, schema={"type": "array"})
    assert "<th>timestamp</th><th>finding</th><th>severity</th>" in html
    assert 'data-seek="3"' in html and "&lt;b&gt;door&lt;/b&gt;" in html


def test_a_broken_structured_answer_falls_back_to_text():
    assert "<table" not in render('[{"timestamp": "00:0', VIDEO, schema={"type": "array"})


def test_time_codes_read_as_seconds():
    assert (seconds("00:00:03"), seconds("01:05"), seconds("1:02:03")) == (3, 65, 3723)
