"""What the answer cards of a case page show: threads, rendered answers, queue places."""

from __future__ import annotations

from analysis import answers, queue
from analysis.models import Analysis, AnswerMark
from analysis.views.review import review_card


def _review(analysis: Analysis, prefetched: bool) -> dict:
    """The reviewers' mark and notes (already fetched for a page of cards, or fetched now)."""
    if not prefetched:
        return review_card(analysis)
    mark, notes = getattr(analysis, "mark", None), list(analysis.notes.all())
    return {"mark": mark, "notes": notes, "mark_states": AnswerMark.State.choices}


def analysis_card(
    analysis: Analysis, place: queue.Place | None = None, prefetched: bool = False
) -> dict:
    """One card: the saved answer rendered, or what has streamed so far as plain text."""
    return _card(analysis, place) | _review(analysis, prefetched)


def _card(analysis: Analysis, place: queue.Place | None) -> dict:
    thread = analysis.thread_root().pk if analysis.follows_id else analysis.pk
    if analysis.is_finished:
        timings = (analysis.record or {}).get("timings") or {}
        return {
            "analysis": analysis,
            "text": analysis.answer,
            "html": answers.render_answer(analysis, analysis.answer, _items(analysis))
            if analysis.answer
            else "",
            "seq": 0,
            "thread": thread,
            "rate": timings.get("tokens_per_s"),
        }
    text, seq = analysis.streamed_text()
    if place is None and analysis.status == Analysis.Status.QUEUED:
        place = queue.places([analysis]).get(str(analysis.pk))
    return {"analysis": analysis, "text": text, "seq": seq, "thread": thread, "place": place}


def _items(analysis: Analysis) -> list:
    """The answer's items in prompt order, from the prefetched rows when there are some."""
    return sorted(analysis.media.all(), key=lambda asset: (asset.created_at, str(asset.pk)))


def threads(analyses: list[Analysis]) -> list[dict]:
    """Cards grouped by thread: newest thread first, each thread's turns oldest first."""
    places = queue.places(analyses)
    by_thread: dict = {}
    for analysis in sorted(analyses, key=lambda a: a.created_at):
        card = analysis_card(analysis, places.get(str(analysis.pk)), prefetched=True)
        by_thread.setdefault(card["thread"], []).append(card)
    ordered = sorted(by_thread.items(), key=lambda kv: kv[1][-1]["analysis"].created_at)
    return [{"id": key, "cards": cards} for key, cards in reversed(ordered)]
