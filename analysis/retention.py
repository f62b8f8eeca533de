"""What is deleted, when, and what stays as proof.

A policy (the global default, or a case's own override) says for each part of a case —
originals, derived files, analysis text, the whole case — after how many days it goes and
from when those days count (closing the case, the upload, the answer); no days means
"keep forever". Legal holds stop all of it. The purge itself (item by item, with its
certificate) is analysis/retention_purge.py; this module decides what is due.

What stays as proof: the rows of purged items (id, SHA-256, size, who uploaded it, when it
went), the audit chain (bodies redacted, rows kept: analysis/audit.py), the purge records
and certificates, and the case row as a tombstone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from analysis import audit
from analysis.models import (
    Analysis,
    AuditEvent,
    Case,
    DeletionRequest,
    LegalHold,
    MediaAsset,
    RetentionPolicy,
)
from analysis.models.retention import SCOPE_LABELS, SCOPES, Anchor

# Holds decide what may go as much as policies do: the purge and the pages ask for them here.
from analysis.retention_holds import (  # noqa: F401
    HeldError,
    hold_message,
    lift_hold,
    lock_case,
    place_hold,
    refuse_if_held,
    standing_holds,
)

Status = MediaAsset.Status
# Items whose original is still there to purge; "checking" ones wait for their media task.
WITH_ORIGINAL = (Status.READY, Status.FAILED)
WITH_DERIVED = (Status.READY, Status.FAILED, Status.PURGED)
CHUNK = 500


# --- policies ------------------------------------------------------------------------------


def global_policy() -> RetentionPolicy | None:
    return RetentionPolicy.objects.filter(case=None).order_by("pk").first()


@dataclass(frozen=True)
class Effective:
    """The policy that applies to one case, and where it comes from."""

    policy: RetentionPolicy | None
    source: str  # "case", "global" or "none"

    def rule(self, scope: str) -> tuple[int | None, str]:
        return self.policy.rule(scope) if self.policy else (None, Anchor.CLOSED)

    def snapshot(self, scope: str) -> dict:
        days, after = self.rule(scope)
        return {"scope": scope, "days": days, "after": after, "source": self.source,
                "policy_id": self.policy.pk if self.policy else None}  # fmt: skip

    @property
    def label(self) -> str:
        return {"case": "this case's policy", "global": "the global policy"}.get(
            self.source, "no policy (everything is kept)"
        )


def effective_policy(case: Case, default: RetentionPolicy | None = None) -> Effective:
    default = default if default is not None else global_policy()
    own = RetentionPolicy.objects.filter(case=case).first()
    if own is not None and (default is None or default.allow_case_overrides):
        return Effective(own, "case")
    return Effective(default, "global" if default else "none")


def overrides_allowed() -> bool:
    default = global_policy()
    return default is None or default.allow_case_overrides


POLICY_FIELDS = [f"{scope}_{part}" for scope in SCOPES for part in ("days", "after")] + [
    "keep_title"
]


def save_policy(*, case: Case | None, values: dict, user, request=None) -> RetentionPolicy:
    """Create or change the global policy (case None) or a case's override; audited with
    the old and new values."""
    with transaction.atomic():
        if case is not None:
            refuse_if_held(case)
        policy = RetentionPolicy.objects.select_for_update().filter(case=case).first()
        before = policy.as_dict() if policy else None
        policy = policy or RetentionPolicy(case=case)
        for name, value in values.items():
            setattr(policy, name, value)
        policy.updated_by = user
        policy.save()
        details = {"scope": "case" if case else "global", "old": before, "new": policy.as_dict()}
        if case is None:
            details["allow_case_overrides"] = policy.allow_case_overrides
        audit.record(AuditEvent.Action.RETENTION_CHANGED, case=case, target=policy,
                     request=request, actor=user, details=details)  # fmt: skip
    return policy


def drop_override(case: Case, *, user, request=None) -> bool:
    with transaction.atomic():
        refuse_if_held(case)
        policy = RetentionPolicy.objects.filter(case=case).first()
        if policy is None:
            return False
        before = policy.as_dict()
        policy.delete()
        audit.record(AuditEvent.Action.RETENTION_CHANGED, case=case, request=request,
                     actor=user, details={"scope": "case", "old": before, "new": None})  # fmt: skip
    return True


# --- what is due ---------------------------------------------------------------------------


def _cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


def _closed_long_enough(case: Case, days: int, now: datetime) -> bool:
    return case.closed_at is not None and case.closed_at <= _cutoff(now, days)


def rule_q(rule, case: Case, now: datetime, own_anchor: str) -> Q | None:
    """The rows a rule makes due, as a filter (None: none of them)."""
    days, after = rule
    if days is None:
        return None
    if after == Anchor.CLOSED:
        return Q() if _closed_long_enough(case, days, now) else None
    return Q(**{f"{own_anchor}__lte": _cutoff(now, days)})


def rule_hits(rule, case: Case, now: datetime, anchor_value) -> bool:
    """rule_q() for one row already in hand."""
    days, after = rule
    if days is None:
        return False
    if after == Anchor.CLOSED:
        return _closed_long_enough(case, days, now)
    return anchor_value is not None and anchor_value <= _cutoff(now, days)


def case_due(case: Case, eff: Effective, now: datetime) -> bool:
    days, _ = eff.rule("case")
    return days is not None and _closed_long_enough(case, days, now)


def approved_requests(case: Case) -> QuerySet[DeletionRequest]:
    return DeletionRequest.objects.filter(case=case, state=DeletionRequest.State.APPROVED)


HAS_ORIGINAL = Q(status__in=WITH_ORIGINAL)
HAS_DERIVED = Q(status__in=WITH_DERIVED, derived_purged_at__isnull=True) & ~Q(derived={})
MEDIA_FIELDS = ("pk", "status", "created_at", "derived_purged_at", "derived", "sha256", "size")
ANALYSIS_FIELDS = ("pk", "finished_at", "answer", "question")


@dataclass
class Plan:
    """What is due in one case now: the policy is resolved once, rows are read in chunks."""

    case: Case
    effective: Effective
    now: datetime
    whole: bool = False  # the whole case goes: its policy says so, or an approved request
    requests: dict = field(default_factory=dict)  # asset id -> approved request id
    whole_request: object = None

    @classmethod
    def of(cls, case: Case, default: RetentionPolicy | None, now: datetime) -> Plan:
        plan = cls(case, effective_policy(case, default), now)
        for request_id, asset_id in approved_requests(case).values_list("pk", "asset_id"):
            if asset_id is None:
                plan.whole_request = request_id
            else:
                plan.requests[asset_id] = request_id
        plan.whole = plan.whole_request is not None or case_due(case, plan.effective, now)
        return plan

    def _forced(self, pk) -> bool:
        return self.whole or pk in self.requests

    def media(self) -> Iterator[tuple]:
        """(row, parts) for each item with something due: parts ⊆ {"original", "derived"}."""
        rows = MediaAsset.objects.filter(case=self.case)
        if not self.whole:
            wanted = Q(pk__in=list(self.requests))
            for scope, has in (("originals", HAS_ORIGINAL), ("derived", HAS_DERIVED)):
                due = rule_q(self.effective.rule(scope), self.case, self.now, "created_at")
                if due is not None:
                    wanted |= has & due
            rows = rows.filter(wanted)
        else:
            rows = rows.filter(Q(status=Status.CHECKING) | HAS_ORIGINAL | HAS_DERIVED)
        for row in keyset(rows, MEDIA_FIELDS):
            parts = self.parts(*row[:5])
            if parts:
                yield row, parts

    def parts(self, pk, status, created_at, derived_purged_at, derived) -> tuple[str, ...]:
        forced = self._forced(pk)
        parts = []
        if status in WITH_ORIGINAL or (self.whole and status == Status.CHECKING):
            rule = self.effective.rule("originals")
            if forced or rule_hits(rule, self.case, self.now, created_at):
                parts.append("original")
        if derived and derived_purged_at is None and status in (*WITH_DERIVED, Status.CHECKING):
            rule = self.effective.rule("derived")
            if forced or rule_hits(rule, self.case, self.now, created_at):
                parts.append("derived")
        return tuple(parts)

    def analyses(self) -> Iterator[tuple]:
        rows = Analysis.objects.filter(case=self.case, text_purged_at__isnull=True)
        if not self.whole:
            due = rule_q(self.effective.rule("analysis"), self.case, self.now, "finished_at")
            if due is None:
                return
            rows = rows.filter(due, status__in=Analysis.FINISHED)
        yield from keyset(rows, ANALYSIS_FIELDS)

    def snapshot(self, scope: str, pk=None) -> dict:
        request = self.whole_request or self.requests.get(pk)
        if request is not None:
            return {"scope": scope, "early_deletion_request": str(request)}
        if self.whole and scope != "case":
            return {**self.effective.snapshot("case"), "part": scope}
        return self.effective.snapshot(scope)

    def due_at(self, scope: str, anchor_value) -> datetime | None:
        days, after = self.effective.rule(scope)
        if days is None:
            return None
        base = self.case.closed_at if after == Anchor.CLOSED else anchor_value
        return base + timedelta(days=days) if base else None


def candidate_cases() -> QuerySet[Case]:
    """Cases a purge looks at: not yet a tombstone, with whether a hold stands on each."""
    held = LegalHold.objects.filter(case=OuterRef("pk"), lifted_at__isnull=True)
    return Case.objects.exclude(status=Case.Status.PURGED).annotate(held=Exists(held))


def keyset(rows: QuerySet, fields: tuple[str, ...]) -> Iterator:
    """Rows in primary-key order, CHUNK at a time, never all at once (each chunk is a fresh
    query after the last key seen, so rows purged meanwhile cannot shift a page)."""
    last = None
    while True:
        page = rows.order_by("pk")
        if last is not None:
            page = page.filter(pk__gt=last)
        batch = list(page.values_list(*fields)[:CHUNK])
        yield from batch
        if len(batch) < CHUNK:
            return
        last = batch[-1][0]


# --- what the case page and the staff preview say ------------------------------------------


@dataclass
class Line:
    scope: str
    text: str
    count: int = 0
    bytes: int = 0


@dataclass
class Schedule:
    case: Case
    effective: Effective
    holds: list[LegalHold]
    lines: list[Line] = field(default_factory=list)


def schedule(case: Case, now: datetime | None = None) -> Schedule:
    """What will go from this case and when, in words, under the policy that applies."""
    now = now or timezone.now()
    eff = effective_policy(case)
    result = Schedule(case, eff, standing_holds(case.pk))
    parts = {
        "originals": MediaAsset.objects.filter(case=case, status__in=WITH_ORIGINAL),
        "derived": MediaAsset.objects.filter(
            case=case, status__in=WITH_DERIVED, derived_purged_at__isnull=True
        ).exclude(derived={}),
        "analysis": Analysis.objects.filter(
            case=case, status__in=Analysis.FINISHED, text_purged_at__isnull=True
        ),
    }
    for scope, rows in parts.items():
        result.lines.append(_line(scope, rows, case, eff))
    days, _ = eff.rule("case")
    text = "The whole case is kept forever." if days is None else (
        f"The whole case purges on {_day(case.closed_at + timedelta(days=days))}."
        if case.closed_at else f"The whole case purges {days} days after it is closed."
    )  # fmt: skip
    result.lines.append(Line("case", text))
    return result


def _line(scope: str, rows: QuerySet, case: Case, eff: Effective) -> Line:
    days, after = eff.rule(scope)
    own = "finished_at" if scope == "analysis" else "created_at"
    sizes = {"size": Sum("size")} if scope == "originals" else {}
    stats = rows.aggregate(first=Min(own), last=Max(own), n=Count("pk"), **sizes)
    n, label = stats["n"] or 0, SCOPE_LABELS[scope]
    if days is None:
        return Line(scope, f"{n} {label}: kept forever.", n)
    if not n:
        return Line(scope, f"No {label} to purge.")
    if after == Anchor.CLOSED:
        when = (f"on {_day(case.closed_at + timedelta(days=days))}" if case.closed_at
                else f"{days} days after the case is closed")  # fmt: skip
    else:
        first, last = (_day(stats[k] + timedelta(days=days)) for k in ("first", "last"))
        when = f"on {first}" if first == last else f"between {first} and {last}"
    return Line(scope, f"{n} {label} purge {when} under {eff.label}.", n, stats.get("size") or 0)


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


@dataclass
class PreviewRow:
    """What the next run would delete from one case."""

    case: Case
    source: str
    originals: int = 0
    original_bytes: int = 0
    derived: int = 0
    derived_bytes: int = 0
    analyses: int = 0
    whole: bool = False

    @property
    def empty(self) -> bool:
        return not (self.originals or self.derived or self.analyses or self.whole)

    @property
    def total_bytes(self) -> int:
        return self.original_bytes + self.derived_bytes


def preview(now: datetime | None = None) -> Iterator[PreviewRow]:
    """Every case with something due, as the next purge run would see it (held cases are
    listed with nothing due: the run skips them). Reads chunk by chunk, like the run."""
    from analysis.media import storage

    now = now or timezone.now()
    default = global_policy()
    for pk, held in keyset(candidate_cases(), ("pk", "held")):
        case = Case.objects.get(pk=pk)
        if held:
            continue
        plan = Plan.of(case, default, now)
        row = PreviewRow(case, plan.effective.source, whole=plan.whole)
        for media, parts in plan.media():
            if "original" in parts:
                row.originals, row.original_bytes = row.originals + 1, row.original_bytes + media[6]
            if "derived" in parts:
                row.derived += 1
                row.derived_bytes += storage.derived_bytes(media[0])
        row.analyses = sum(1 for _ in plan.analyses())
        if not row.empty:
            yield row


def held_cases() -> QuerySet[Case]:
    return candidate_cases().filter(held=True)
