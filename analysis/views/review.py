"""Reviewers' marks on answers and notes on answers or time ranges of media; all audited."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from analysis import access, audit, search
from analysis.models import Analysis, AnswerMark, AuditEvent, MediaAsset, ReviewNote


class NoteForm(forms.Form):
    text = forms.CharField(max_length=4000, strip=True, widget=forms.Textarea(attrs={"rows": 2}))
    start = forms.CharField(required=False, max_length=12, label="From (h:mm:ss)")
    end = forms.CharField(required=False, max_length=12, label="To (h:mm:ss)")

    def clean_start(self) -> float | None:
        return _seconds(self.cleaned_data.get("start", ""))

    def clean_end(self) -> float | None:
        return _seconds(self.cleaned_data.get("end", ""))

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if end is not None and start is None:
            self.add_error("start", "Give where the range starts.")
        elif start is not None and end is not None and end < start:
            self.add_error("end", "The range must end after it starts.")
        return data


def _seconds(value: str) -> float | None:
    """'75', '1:15' or '0:01:15' as seconds; blank is None."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        parts = [float(p) for p in value.split(":")]
    except ValueError as exc:
        raise forms.ValidationError("Write a time as seconds or h:mm:ss.") from exc
    if len(parts) > 3 or any(p < 0 for p in parts):
        raise forms.ValidationError("Write a time as seconds or h:mm:ss.")
    total = 0.0
    for part in parts:
        total = total * 60 + part
    return total


def review_card(analysis: Analysis) -> dict:
    """Mark and notes of one answer, for the card's review partial."""
    mark = AnswerMark.objects.filter(analysis=analysis).select_related("updated_by").first()
    notes = list(analysis.notes.select_related("author"))
    return {"mark": mark, "notes": notes, "mark_states": AnswerMark.State.choices}


@login_required
@require_POST
def mark_answer(request: HttpRequest, case_id, analysis_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id, access.Action.COMMENT)
    analysis = get_object_or_404(Analysis, pk=analysis_id, case=found.case)
    pinned, state = request.POST.get("pinned"), request.POST.get("state")
    valid = pinned in (None, "0", "1") and state in (None, *AnswerMark.State.values)
    if not valid or (pinned is None and state is None) or not analysis.is_finished:
        messages.error(request, "Only a finished answer can be marked, with a known state.")
        return redirect(_answer_url(analysis))
    with transaction.atomic():
        mark, _ = AnswerMark.objects.select_for_update().get_or_create(
            analysis=analysis, defaults={"updated_by": request.user}
        )
        before = {"pinned": mark.pinned, "state": mark.state}
        if pinned is not None:
            mark.pinned = pinned == "1"
        if state is not None:
            mark.state = state
        mark.updated_by = request.user
        mark.save()
        audit.record(
            AuditEvent.Action.ANSWER_MARKED,
            case=found.case,
            target=analysis,
            request=request,
            details={"before": before, "after": {"pinned": mark.pinned, "state": mark.state}},
        )
    if request.htmx:
        return _review_partial(request, found, analysis)
    return redirect(_answer_url(analysis))


@login_required
@require_POST
def note_on_answer(request: HttpRequest, case_id, analysis_id) -> HttpResponse:
    found, analysis = _take_note(request, case_id, Analysis, analysis_id, about="analysis")
    if request.htmx:
        return _review_partial(request, found, analysis)
    return redirect(_answer_url(analysis))


@login_required
@require_POST
def note_on_media(request: HttpRequest, case_id, asset_id) -> HttpResponse:
    found, asset = _take_note(
        request, case_id, MediaAsset, asset_id, about="media", added="Note added."
    )
    return redirect(reverse("media-detail", args=[found.case.id, asset.id]) + "#notes")


def _take_note(request: HttpRequest, case_id, model, pk, *, about: str, added: str = ""):
    """The note form posted about one answer or media item of a case the user may comment
    in: saved, or its first error told. Returns the case access and the object."""
    found = access.get_case_or_404(request.user, case_id, access.Action.COMMENT)
    target = get_object_or_404(model, pk=pk, case=found.case)
    form = NoteForm(request.POST)
    if form.is_valid():
        _add_note(request, found, form, **{about: target})
        if added:
            messages.success(request, added)
    else:
        messages.error(request, _first_error(form))
    return found, target


def _add_note(request: HttpRequest, found: access.CaseAccess, form: NoteForm, **about) -> None:
    data = form.cleaned_data
    with transaction.atomic():
        note = ReviewNote.objects.create(
            case=found.case,
            author=request.user,
            text=data["text"],
            start_seconds=data["start"] if "media" in about else None,
            end_seconds=data["end"] if "media" in about else None,
            **about,
        )
        audit.record(
            AuditEvent.Action.NOTE_ADDED,
            case=found.case,
            target=note,
            request=request,
            details={
                "on": "answer" if "analysis" in about else "media",
                "about": str(next(iter(about.values())).pk),
                "range": note.time_range,
                "chars": len(note.text),
            },
        )
        search.index_note(note)


def _first_error(form: forms.Form) -> str:
    for field, errors in form.errors.items():
        label = form.fields[field].label or field if field in form.fields else ""
        return f"{label.capitalize()}: {errors[0]}" if label else errors[0]
    return "Please check the form."


def _answer_url(analysis: Analysis) -> str:
    return reverse("case-detail", args=[analysis.case_id]) + f"#analysis-{analysis.id}"


def _review_partial(request: HttpRequest, found, analysis: Analysis) -> HttpResponse:
    context = {
        "case": found.case,
        "card": {"analysis": analysis, **review_card(analysis)},
        "can_comment": found.can(access.Action.COMMENT),
    }
    return render(request, "analysis/cases/review.html", context)
