"""The purge: what analysis/retention.py says is due goes, item by item, with a certificate.

Each item (one media item's original and/or derived files, one analysis' text, a case's
tombstone) is purged in its own short transaction: the case row is locked and the holds
read again, the row is claimed with a conditional UPDATE (so nothing is deleted twice),
the files go through analysis/media/storage.py, the item's audit bodies are redacted in one
UPDATE, and its PurgeRecord is written. A run killed at any point leaves every item either
untouched or done; a file removed by a rolled-back step is removed again (a no-op) next run.

Certificates are written as the run goes, never held in memory: the PurgeRecord rows are the
certificate's lines, and after each case (and at the end of the run) the SHA-256 of the
certificate document goes on the audit chain. A run that died is certified by the next.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from analysis import audit, metrics, retention
from analysis.audit import canonical
from analysis.inference.cache import purge_media
from analysis.media import storage
from analysis.models import (
    Analysis,
    AnalysisChunk,
    AnswerMark,
    AuditEvent,
    Batch,
    Case,
    DeletionRequest,
    MediaAsset,
    MediaUpload,
    PromptTemplate,
    PurgeRecord,
    PurgeRun,
    ReviewNote,
    SearchEntry,
)

log = logging.getLogger(__name__)
Kind = PurgeRecord.Kind
Status = MediaAsset.Status
FORMAT = "gemma-web-purge-certificate"
# The run's own audit events are proof and keep their bodies.
KEEP_BODIES = Q(action__startswith="retention.")


def run(*, trigger: str = "command", now: datetime | None = None, case_ids=None) -> PurgeRun:
    """Purge everything due now in every case not under hold (or in `case_ids` only: an
    approved early deletion); returns the certified run."""
    certify_interrupted()
    purge_run = PurgeRun.objects.create(trigger=trigger)
    default = retention.global_policy()
    cases = retention.candidate_cases().filter(held=False)
    if case_ids is not None:
        cases = cases.filter(pk__in=case_ids)
    for (case_id,) in retention.keyset(cases, ("pk",)):
        case = Case.objects.get(pk=case_id)
        purge_case(purge_run, retention.Plan.of(case, default, now or timezone.now()))
    finish(purge_run, PurgeRun.State.FINISHED)
    return purge_run


def purge_case(purge_run: PurgeRun, plan: retention.Plan) -> None:
    try:
        for row, parts in plan.media():
            purge_media_item(purge_run, plan, row, parts)
        for row in plan.analyses():
            purge_analysis(purge_run, plan, row)
        if plan.whole:
            purge_case_row(purge_run, plan)
    except retention.HeldError:
        log.info("case %s was put on hold during the purge: left as it is", plan.case.pk)
    certify_case(purge_run, plan.case.pk)


# The case row locked and its standing holds read in one query (the tables of Case and
# LegalHold); SQLite has no FOR UPDATE, its IMMEDIATE transaction already holds the lock.
_HELD = (
    "SELECT EXISTS (SELECT 1 FROM analysis_legalhold h WHERE h.case_id = c.id"
    " AND h.lifted_at IS NULL) FROM analysis_case c WHERE c.id = %s"
)


def _claim_unheld(case: Case) -> None:
    """Lock the case and read its holds, inside the item's transaction."""
    sql = _HELD + (" FOR UPDATE" if connection.features.has_select_for_update else "")
    case_id = Case._meta.pk.get_db_prep_value(case.pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [case_id])
        held = cursor.fetchone()[0]
    if held:
        raise retention.HeldError(retention.hold_message(retention.standing_holds(case.pk)))


def purge_media_item(purge_run: PurgeRun, plan: retention.Plan, row: tuple, parts) -> int:
    pk, _, created_at, _, _, sha256, size = row
    case = plan.case
    with transaction.atomic():
        _claim_unheld(case)
        now = timezone.now()
        claim, changes = MediaAsset.objects.filter(pk=pk), {}
        if "original" in parts:
            claim = claim.filter(purged_at__isnull=True).exclude(status__in=MediaAsset.GONE)
            changes.update(status=Status.PURGED, purged_at=now, filename="", metadata={},
                           status_reason="")  # fmt: skip
        if "derived" in parts:
            claim = claim.filter(derived_purged_at__isnull=True)
            changes.update(derived={}, derived_purged_at=now)
        if not claim.update(**changes):
            return 0
        derived_size = storage.derived_bytes(pk) if "derived" in parts else 0
        if "original" in parts:
            storage.remove_original(case.pk, pk)
        if "derived" in parts:
            storage.remove_derived(pk)
        purge_media(sha256)  # evaluated prefixes are derived data too
        redacted = []
        if "original" in parts:
            SearchEntry.objects.filter(media_id=pk).delete()
            redacted = audit.redact(AuditEvent.objects.filter(target_id=str(pk)))
        else:
            SearchEntry.objects.filter(media_id=pk, kind=SearchEntry.Kind.PAGE).delete()
        records = []
        if "original" in parts:
            records.append(_record(purge_run, plan, Kind.ORIGINAL, pk, sha256, size,
                                   "originals", created_at, now, redacted))  # fmt: skip
        if "derived" in parts:
            records.append(_record(purge_run, plan, Kind.DERIVED, pk, sha256, derived_size,
                                   "derived", created_at, now, []))  # fmt: skip
        PurgeRecord.objects.bulk_create(records)
        if pk in plan.requests:
            _request_done(plan.requests[pk], now)
    return size


def _record(purge_run, plan, kind, pk, sha256, size, scope, anchor, now, redacted):
    due_at = plan.due_at("case" if plan.whole else scope, anchor)
    return PurgeRecord(
        run=purge_run, case_id=plan.case.pk, kind=kind, target_id=pk, sha256=sha256, size=size,
        policy=plan.snapshot(scope, pk), due_at=due_at, purged_at=now, redacted=redacted,
    )  # fmt: skip


def _request_done(request_id, now) -> None:
    DeletionRequest.objects.filter(pk=request_id, state=DeletionRequest.State.APPROVED).update(
        state=DeletionRequest.State.DONE
    )


def purge_analysis(purge_run: PurgeRun, plan: retention.Plan, row: tuple) -> None:
    pk, finished_at, answer, question = row
    with transaction.atomic():
        _claim_unheld(plan.case)
        now = timezone.now()
        blank = {"question": "", "answer": "", "error": "", "record": {}, "response_schema": None}
        claimed = Analysis.objects.filter(pk=pk, text_purged_at__isnull=True).update(
            text_purged_at=now, cancel_requested=True, **blank
        )
        if not claimed:
            return
        AnalysisChunk.objects.filter(analysis_id=pk).delete()
        SearchEntry.objects.filter(analysis_id=pk).delete()
        redacted = audit.redact(AuditEvent.objects.filter(target_id=str(pk)))
        text = canonical({"question": question, "answer": answer})
        sha256 = hashlib.sha256(text).hexdigest()
        record = _record(purge_run, plan, Kind.ANALYSIS, pk, sha256, len(text), "analysis",
                         finished_at, now, redacted)  # fmt: skip
        record.save(force_insert=True)


def purge_case_row(purge_run: PurgeRun, plan: retention.Plan) -> bool:
    """The last step of a whole-case purge: what is left goes, the row stays a tombstone."""
    case = plan.case
    left = MediaAsset.objects.filter(case=case).filter(
        Q(status__in=(Status.CHECKING, *retention.WITH_ORIGINAL)) | retention.HAS_DERIVED
    )
    if left.exists() or Analysis.objects.filter(case=case, text_purged_at__isnull=True).exists():
        return False  # an item could not go this time: the next run finishes the case
    with transaction.atomic():
        _claim_unheld(case)
        now = timezone.now()
        keep = plan.effective.policy.keep_title if plan.effective.policy else True
        claimed = Case.objects.filter(pk=case.pk).exclude(status=Case.Status.PURGED).update(
            status=Case.Status.PURGED, purged_at=now, description="", reference=None,
            title=case.title if keep else "Purged case",
        )  # fmt: skip
        if not claimed:
            return False
        _remove_case_leftovers(case)
        redacted = []
        for chunk in _chunks(AuditEvent.objects.filter(case=case).exclude(KEEP_BODIES)):
            redacted += audit.redact(chunk)
        PurgeRecord.objects.create(
            run=purge_run, case_id=case.pk, kind=Kind.CASE, target_id=case.pk,
            policy=plan.snapshot("case"), due_at=plan.due_at("case", None), purged_at=now,
            redacted=redacted,
        )  # fmt: skip
        if plan.whole_request is not None:
            _request_done(plan.whole_request, now)
        audit.record(AuditEvent.Action.TOMBSTONE, case=case, target=case, details={
            "run": str(purge_run.pk), "redacted_events": len(redacted), "title_kept": keep,
        })  # fmt: skip
    return True


def _remove_case_leftovers(case: Case) -> None:
    for upload_id in MediaUpload.objects.filter(case=case).values_list("pk", flat=True):
        storage.remove_partial(upload_id)
    MediaUpload.objects.filter(case=case).delete()
    SearchEntry.objects.filter(case=case).delete()
    ReviewNote.objects.filter(case=case).delete()
    AnswerMark.objects.filter(analysis__case=case).delete()
    Batch.objects.filter(case=case).delete()
    PromptTemplate.objects.filter(case=case).delete()


def _chunks(rows, size: int = retention.CHUNK) -> Iterator:
    """The rows not yet redacted, `size` at a time (bounded SQL statements); each chunk is
    redacted before the next is read, so the next query starts where that one ended."""
    while True:
        unredacted = rows.filter(redacted_body_hash__isnull=True).order_by("seq")
        keys = list(unredacted.values_list("pk", flat=True)[:size])
        if not keys:
            return
        yield AuditEvent.objects.filter(pk__in=keys)


# --- certificates --------------------------------------------------------------------------


def certificate_chunks(records, header: dict) -> Iterator[bytes]:
    """The certificate document, a line per purged part: streamed, never built whole."""
    head = canonical({"format": FORMAT, "version": 1, **header})
    yield head[:-1] + b',"items":['
    first = True
    for record in records.order_by("id").iterator(chunk_size=2000):
        yield (b"" if first else b",") + b"\n" + canonical(record_line(record))
        first = False
    yield b"\n]}\n"


def record_line(record: PurgeRecord) -> dict:
    return {
        "run": str(record.run_id), "case": str(record.case_id), "kind": record.kind,
        "id": str(record.target_id), "sha256": record.sha256, "size": record.size,
        "policy": record.policy, "due_at": _iso(record.due_at),
        "purged_at": _iso(record.purged_at), "redacted_events": record.redacted,
    }  # fmt: skip


def _iso(moment) -> str | None:
    return audit.iso_utc(moment) if moment else None


def case_certificate(purge_run_id, case_id) -> tuple[dict, object]:
    header = {"run": str(purge_run_id) if purge_run_id else None, "case": str(case_id)}
    records = PurgeRecord.objects.filter(case_id=case_id)
    if purge_run_id:
        records = records.filter(run_id=purge_run_id)
    return header, records


def run_certificate(purge_run: PurgeRun) -> tuple[dict, object]:
    header = {
        "run": str(purge_run.pk), "case": None, "state": purge_run.state,
        "started_at": _iso(purge_run.started_at), "finished_at": _iso(purge_run.finished_at),
    }  # fmt: skip
    return header, purge_run.records.all()


def digest(header: dict, records) -> str:
    sha = hashlib.sha256()
    for chunk in certificate_chunks(records, header):
        sha.update(chunk)
    return sha.hexdigest()


def certify_case(purge_run: PurgeRun, case_id) -> None:
    header, records = case_certificate(purge_run.pk, case_id)
    totals = records.aggregate(n=Count("pk"), size=Sum("size"))
    if not totals["n"]:
        return
    audit.record(AuditEvent.Action.PURGED, case=case_id, target=purge_run, details={
        "run": str(purge_run.pk), "items": totals["n"], "bytes": totals["size"] or 0,
        "certificate_sha256": digest(header, records),
    })  # fmt: skip


def finish(purge_run: PurgeRun, state: str) -> None:
    totals = purge_run.records.aggregate(n=Count("pk"), size=Sum("size"))
    purge_run.state, purge_run.finished_at = state, timezone.now()
    purge_run.items, purge_run.bytes = totals["n"], totals["size"] or 0
    purge_run.certificate_sha256 = digest(*run_certificate(purge_run))
    for kind, count in purge_run.records.order_by().values_list("kind").annotate(n=Count("pk")):
        metrics.record_purge(kind, count)
    with transaction.atomic():
        purge_run.save()
        audit.record(AuditEvent.Action.PURGED, target=purge_run, details={
            "run": str(purge_run.pk), "state": state, "trigger": purge_run.trigger,
            "items": purge_run.items, "bytes": purge_run.bytes,
            "certificate_sha256": purge_run.certificate_sha256,
        })  # fmt: skip


def certify_interrupted() -> int:
    """Runs that died before their end: certify each case they touched and the run itself."""
    count = 0
    for purge_run in PurgeRun.objects.filter(state=PurgeRun.State.RUNNING):
        case_ids = purge_run.records.order_by().values_list("case_id", flat=True).distinct()
        for case_id in case_ids:
            certified = AuditEvent.objects.filter(
                case_id=case_id, target_type="purgerun", target_id=str(purge_run.pk)
            )
            if not certified.exists():
                certify_case(purge_run, case_id)
        finish(purge_run, PurgeRun.State.INTERRUPTED)
        count += 1
    return count
