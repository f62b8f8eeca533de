"""The case report: one template, rendered as HTML and, through WeasyPrint, as PDF.

A report lists the case's media (hash, size, type, upload, thumbnail), the answers the
reviewers chose (pinned; all finished ones when none is pinned) with their citations, marks,
notes and reproducibility records, and the case's audit chain head with its latest seal.
The report cannot carry its own hash, so the export event (`case.exported`) does: it names
the report id printed on every page together with the SHA-256 of the bytes handed out.
`manage.py verify_report FILE` checks a file against that event and the case.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from analysis import audit, audit_seal
from analysis.audit_hash import iso_utc
from analysis.media import storage
from analysis.models import Analysis, AuditEvent, Case, MediaAsset, ReviewNote

FORMATS = ("html", "pdf")
THUMB_MAX_BYTES = 512 * 1024  # a bigger "thumbnail" is left out rather than bloat the report
CITATION = re.compile(r"\[(\d{1,2}:\d{2}:\d{2})\]|\[page (\d+)\]", re.IGNORECASE)
HEX64 = re.compile(r"\b[0-9a-f]{64}\b")


@dataclass(frozen=True)
class Report:
    id: uuid.UUID
    fmt: str
    content: bytes
    sha256: str
    event: AuditEvent

    @property
    def filename(self) -> str:
        stamp = self.event.created_at.strftime("%Y%m%dT%H%M%SZ")
        return f"case-report-{stamp}-{str(self.id)[:8]}.{self.fmt}"

    @property
    def content_type(self) -> str:
        return "application/pdf" if self.fmt == "pdf" else "text/html; charset=utf-8"


def chosen_answers(case: Case) -> list[Analysis]:
    """Pinned answers; when the reviewers pinned none, every answer that finished well."""
    finished = case.analyses.filter(status=Analysis.Status.SUCCEEDED)
    rows = finished.select_related("created_by", "mark", "mark__updated_by")
    pinned = [a for a in rows.filter(mark__pinned=True).order_by("created_at")]
    return pinned or list(rows.order_by("created_at"))


def citations(analysis: Analysis) -> list[dict]:
    """Each [hh:mm:ss] / [page N] the answer cites, with the items of that kind it was about."""
    used = (analysis.record or {}).get("media") or []
    timed = [m.get("name", "") for m in used if m.get("kind") in ("video", "audio")]
    paged = [m.get("name", "") for m in used if m.get("kind") == "document"]
    found = []
    for match in CITATION.finditer(analysis.answer):
        label, within = (f"[{match[1]}]", timed) if match[1] else (f"[page {match[2]}]", paged)
        found.append({"label": label, "items": ", ".join(within)})
    return found


def _thumbnail(asset: MediaAsset) -> str:
    name = asset.derived.get("thumbnail") or asset.derived.get("waveform")
    if not name:
        return ""
    try:
        if (storage.derived_size(asset.id, name) or 0) > THUMB_MAX_BYTES:
            return ""
        data = storage.read_derived(asset.id, name)
    except OSError:
        return ""
    if len(data) > THUMB_MAX_BYTES:
        return ""
    kind = "png" if data.startswith(b"\x89PNG") else "webp" if data[8:12] == b"WEBP" else "jpeg"
    return f"data:image/{kind};base64,{base64.b64encode(data).decode()}"


def context(case: Case, *, report_id, user, now) -> dict:
    media = list(case.media.select_related("uploaded_by").order_by("created_at"))
    answers = chosen_answers(case)
    notes = ReviewNote.objects.filter(case=case).select_related("author", "media")
    by_answer: dict = {}
    for note in notes:
        by_answer.setdefault(note.analysis_id, []).append(note)
    head_seq, head_hash = audit._head(case.pk)
    seal = audit_seal.read_seals().last(AuditEvent.chain_key_for(case.pk))
    return {
        "case": case,
        "report_id": report_id,
        "generated_at": now,
        "generated_by": user,
        "media": [{"item": m, "thumb": _thumbnail(m)} for m in media],
        "answers": [
            {
                "analysis": a,
                "mark": getattr(a, "mark", None),
                "citations": citations(a),
                "notes": by_answer.get(a.id, []),
                "record": a.record or {},
            }
            for a in answers
        ],
        "media_notes": [n for n in notes if n.media_id],
        "all_pinned": any(getattr(a, "mark", None) and a.mark.pinned for a in answers),
        "head": {"seq": head_seq, "hash": head_hash},
        "seal": seal,
    }


def render_html(ctx: dict) -> str:
    return render_to_string("analysis/report/report.html", ctx)


def render_pdf(html: str) -> bytes:
    # Imported here: only report exports pay for loading pango.
    from weasyprint import HTML

    return HTML(string=html, base_url=None).write_pdf()


def export(case: Case, *, fmt: str, user, request=None) -> Report:
    """Render the report and record its hash on the case's chain, in one transaction."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}")
    report_id = uuid.uuid4()
    now = timezone.now()
    html = render_html(context(case, report_id=report_id, user=user, now=now))
    content = render_pdf(html) if fmt == "pdf" else html.encode("utf-8")
    digest = hashlib.sha256(content).hexdigest()
    with transaction.atomic():
        event = audit.record(
            AuditEvent.Action.CASE_EXPORTED,
            actor=user,
            case=case,
            target=case,
            request=request,
            details={
                "report_id": str(report_id),
                "format": fmt,
                "sha256": digest,
                "bytes": len(content),
                "generated_at": iso_utc(now),
            },
        )
    return Report(report_id, fmt, content, digest, event)
