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
from analysis.audit_hash import canonical, iso_utc
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


# The case row is locked first, in a statement of its own: the holds are read by the next
# statement, whose snapshot is taken after the lock was granted, so a hold committed by the
# transaction we waited for is seen. SQLite has no FOR UPDATE: its IMMEDIATE transaction
# already holds the database's write lock.
_LOCK_CASE = "SELECT id FROM analysis_case WHERE id = %s FOR UPDATE"
_NOT_HELD = (
    "NOT EXISTS (SELECT 1 FROM analysis_legalhold h WHERE h.case_id = %s AND h.lifted_at IS NULL)"
)


def _lock(case: Case) -> None:
    if connection.features.has_select_for_update:
        _execute(_LOCK_CASE, [_prep(Case, "id", case.pk)])


def _refuse_if_held(case: Case) -> None:
    holds = retention.standing_holds(case.pk)
    if holds:
        raise retention.HeldError(retention.hold_message(holds))


def _claim_unheld(case: Case) -> None:
    """Lock the case and read its holds, inside the item's transaction."""
    _lock(case)
    _refuse_if_held(case)


def purge_media_item(purge_run: PurgeRun, plan: retention.Plan, row: tuple, parts) -> int:
    pk, _, created_at, _, _, sha256, size = row
    case = plan.case
    with transaction.atomic():
        _lock(case)
        now = timezone.now()
        if not _claim_media(pk, case, parts, now):
            _refuse_if_held(case)
            return 0  # not held: another run took it first
        derived_size = storage.derived_bytes(pk) if "derived" in parts else 0
        if "original" in parts:
            storage.remove_original(case.pk, pk)
        if "derived" in parts:
            storage.remove_derived(pk)
        purge_media(sha256)  # evaluated prefixes are derived data too
        redacted = []
        if "original" in parts:
            if not _unindex_in_claim():
                _execute(_UNINDEX_MEDIA, [_prep(SearchEntry, "media", pk)])
            redacted = audit.redact_target(str(pk))
        else:  # page text is derived: it goes with the derived files
            _execute(_UNINDEX_PAGES, [_prep(SearchEntry, "media", pk), SearchEntry.Kind.PAGE])
        records = []
        if "original" in parts:
            records.append(_record(purge_run, plan, Kind.ORIGINAL, pk, sha256, size,
                                   "originals", created_at, now, redacted))  # fmt: skip
        if "derived" in parts:
            records.append(_record(purge_run, plan, Kind.DERIVED, pk, sha256, derived_size,
                                   "derived", created_at, now, []))  # fmt: skip
        _insert_records(records)
        if pk in plan.requests:
            _request_done(plan.requests[pk], now)
    return size


# Plain SQL on the per-item path: the ORM's query building cost more than the queries.
_UNINDEX_MEDIA = "DELETE FROM analysis_searchentry WHERE media_id = %s"
_UNINDEX_PAGES = "DELETE FROM analysis_searchentry WHERE media_id = %s AND kind = %s"
_STILL_ORIGINAL = "purged_at IS NULL AND status NOT IN ('deleted', 'rejected', 'purged')"
_STILL_DERIVED = "derived_purged_at IS NULL"


# PostgreSQL runs a DELETE inside the claim's WITH (data-modifying CTE); SQLite cannot.
def _unindex_in_claim() -> bool:
    return connection.vendor == "postgresql"


def _prep(model, name: str, value):
    return model._meta.get_field(name).get_db_prep_save(value, connection)


def _execute(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _claim_media(pk, case: Case, parts, now) -> bool:
    """The conditional UPDATE that makes the item this run's: False when it went already or
    a hold stands (on PostgreSQL it also drops the item's search rows, one round trip)."""
    changes, conditions = {}, []
    if "original" in parts:
        changes.update(status=Status.PURGED, purged_at=now, filename="", metadata={},
                       status_reason="")  # fmt: skip
        conditions.append(_STILL_ORIGINAL)
    if "derived" in parts:
        changes.update(derived={}, derived_purged_at=now)
        conditions.append(_STILL_DERIVED)
    columns = ", ".join(f"{MediaAsset._meta.get_field(n).column} = %s" for n in changes)
    where = " AND ".join([*conditions, _NOT_HELD])
    sql = f"UPDATE analysis_mediaasset SET {columns} WHERE id = %s AND {where}"  # noqa: S608 - column names from the model, values as parameters
    params = [_prep(MediaAsset, n, v) for n, v in changes.items()]
    params += [_prep(MediaAsset, "id", pk), _prep(Case, "id", case.pk)]
    if _unindex_in_claim() and "original" in parts:
        sql = f"WITH unindexed AS ({_UNINDEX_MEDIA}) {sql}"
        params = [_prep(SearchEntry, "media", pk), *params]
    return bool(_execute(sql, params))


_RECORD_FIELDS = [f for f in PurgeRecord._meta.concrete_fields if not f.primary_key]
_INSERT_RECORD = f"INSERT INTO analysis_purgerecord ({', '.join(f.column for f in _RECORD_FIELDS)})"  # noqa: S608 - the model's own columns
_RECORD_VALUES = f"({', '.join(['%s'] * len(_RECORD_FIELDS))})"


def _insert_records(records: list[PurgeRecord]) -> None:
    """One INSERT of all the item's records (one round trip, not a pipeline per row)."""
    params = [
        f.get_db_prep_save(getattr(r, f.attname), connection)
        for r in records
        for f in _RECORD_FIELDS
    ]
    values = ", ".join([_RECORD_VALUES] * len(records))
    _execute(f"{_INSERT_RECORD} VALUES {values}", params)


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
        redacted = audit.redact_target(str(pk))
        text = canonical({"question": question, "answer": answer})
        sha256 = hashlib.sha256(text).hexdigest()
        _insert_records([_record(purge_run, plan, Kind.ANALYSIS, pk, sha256, len(text),
                                 "analysis", finished_at, now, redacted)])  # fmt: skip


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
    for row in retention.keyset(records, ("pk", *LINE_FIELDS)):
        yield (b"" if first else b",") + b"\n" + canonical(record_line(*row[1:]))
        first = False
    yield b"\n]}\n"


LINE_FIELDS = ("run_id", "case_id", "kind", "target_id", "sha256", "size", "policy", "due_at",
               "purged_at", "redacted")  # fmt: skip


def record_line(run_id, case_id, kind, target_id, sha256, size, policy, due_at, purged_at,
                redacted) -> dict:  # fmt: skip
    return {
        "run": str(run_id), "case": str(case_id), "kind": kind, "id": str(target_id),
        "sha256": sha256, "size": size, "policy": policy, "due_at": _iso(due_at),
        "purged_at": _iso(purged_at), "redacted_events": redacted,
    }  # fmt: skip


def _iso(moment) -> str | None:
    return iso_utc(moment) if moment else None


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
