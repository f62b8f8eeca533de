"""The audit trail: `record()` appends one hash-chained event, `verify()` proves a chain intact.

Call `record()` explicitly from the code that performs the action (never from signals), inside
the transaction that performs it: the event then commits or rolls back with the action.

Chains. Each case has one chain ("case:<uuid>"); events outside any case (sign-in, staff
actions) form the "global" chain. Events are numbered 1, 2, 3 ... per chain and each carries
the previous event's hash (64 zeros for the first). Writers to one chain are serialized:
PostgreSQL takes `pg_advisory_xact_lock` on the chain; SQLite runs every transaction as
BEGIN IMMEDIATE (settings), which holds the database's single write lock from the start, so
reading the head and inserting the next event cannot interleave with another writer (a row
lock such as select_for_update would add nothing there: SQLite ignores it). Behind both, the
unique (chain, seq) constraints make a fork impossible: a missed lock becomes an error,
never a second event #n. What a hash covers, and how an external verifier recomputes it
from an export: the recipe in analysis/audit_hash.py.

Retention and tombstones. Rows are never deleted, not even on purge: a chain with holes
cannot be verified. What retention may remove is an event's *body* (IP, user agent, details:
the personal data), which is why the hash covers the body only through `body_hash`. The
triggers (migration 0012) refuse every DELETE and every UPDATE but one per row: body fields
cleared and `redacted_body_hash` set, every other column unchanged (`redact()` below makes
it). verify() uses the stored `redacted_body_hash` for such rows, so the chain still verifies;
the purge lists the redacted seqs with their body hashes in its certificate, whose SHA-256 a
`retention.purged` event puts on the chain, so the removal itself is on the chain and sealed.
Case chains stay, so `case` FKs use PROTECT.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from analysis.audit_hash import GENESIS, body_hash, event_hash, json_safe
from analysis.models import AuditEvent

Action = AuditEvent.Action
USER_AGENT_MAX = AuditEvent._meta.get_field("user_agent").max_length
# pg_advisory_xact_lock(int, int): the first key says "audit chain", so these locks never
# collide with advisory locks taken by other features.
LOCK_NAMESPACE = 0x61756474  # "audt"


def record(
    action: str,
    *,
    actor=None,
    case=None,
    target: models.Model | tuple[str, object] | None = None,
    request=None,
    details: Mapping | None = None,
) -> AuditEvent:
    """Append one event to the chain of `case` (the global chain when None).

    actor: the user who acted; defaults to request.user when the request is signed in, and
    stays None for the system (workers, beat). target: a model instance or (type, id).
    request: where IP and user agent come from. details: JSON-able facts worth keeping.
    """
    action = Action(action)  # an unknown action is a programming error: fail loudly
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        actor = user if user is not None and user.is_authenticated else None
    case_id = _case_uuid(case)
    target_type, target_id = _target(target)
    ip, user_agent = client_of(request)
    body = json_safe(dict(details or {}))
    with transaction.atomic():
        _lock_chain(AuditEvent.chain_key_for(case_id))
        seq, prev_hash = _head(case_id)
        event = AuditEvent(
            id=uuid.uuid4(),
            case_id=case_id,
            seq=seq + 1,
            actor=actor,
            action=action.value,
            target_type=target_type,
            target_id=target_id,
            # Taken under the lock: along a chain, seq order is time order (on one clock).
            created_at=timezone.now(),
            ip=ip,
            user_agent=user_agent,
            details=body,
            prev_hash=prev_hash,
        )
        event.hash = event_hash(event)
        event.save(force_insert=True)
    return event


# --- redaction (retention's tombstones) -------------------------------------------------------


def redact(rows: models.QuerySet) -> list[list]:
    """Clear the bodies of these events in one UPDATE, keeping each body's hash; returns
    [[seq, body_hash], ...] of the rows redacted now (already redacted ones are left)."""
    pending = list(
        rows.filter(redacted_body_hash__isnull=True).values_list("pk", "seq", "ip", "user_agent",
                                                                 "details")
    )  # fmt: skip
    if not pending:
        return []
    hashes = {pk: body_hash(ip, agent, details) for pk, _, ip, agent, details in pending}
    AuditEvent.objects.filter(pk__in=hashes).update(
        ip=None, user_agent="", details={},
        redacted_body_hash=models.Case(
            *(models.When(pk=pk, then=models.Value(h)) for pk, h in hashes.items()),
            output_field=models.CharField(),
        ),
    )  # fmt: skip
    return [[seq, hashes[pk]] for pk, seq, *_ in pending]


# The purge's hot path: the events about one purged thing, redacted in plain SQL (building
# these two queries with the ORM cost more than running them, item after item).
_BODIES_OF_TARGET = (
    "SELECT id, seq, ip, user_agent, details FROM analysis_auditevent"
    " WHERE target_id = %s AND redacted_body_hash IS NULL"
)
_REDACT_ONE = (
    "UPDATE analysis_auditevent SET ip = NULL, user_agent = '', details = {empty},"
    " redacted_body_hash = %s WHERE id = %s AND redacted_body_hash IS NULL"
)


def redact_target(target_id: str) -> list[list]:
    """redact() of every event whose target is `target_id` (an item's or answer's id)."""
    with connection.cursor() as cursor:
        cursor.execute(_BODIES_OF_TARGET, [target_id])
        rows = cursor.fetchall()
        if not rows:
            return []
        done = []
        for pk, seq, ip, agent, details in rows:
            details = json.loads(details) if isinstance(details, str) else details
            done.append((seq, body_hash(str(ip) if ip else None, agent, details), pk))
        empty = "'{}'::jsonb" if connection.vendor == "postgresql" else "'{}'"
        sql = _REDACT_ONE.format(empty=empty)
        for _, digest, pk in done:  # mostly one row: a plain execute is one round trip
            cursor.execute(sql, [digest, pk])
    return [[seq, h] for seq, h, _ in done]


# --- helpers for record() --------------------------------------------------------------------


def _case_uuid(case) -> uuid.UUID | None:
    if case is None:
        return None
    if isinstance(case, models.Model):
        return case.pk
    return case if isinstance(case, uuid.UUID) else uuid.UUID(str(case))


def _target(target) -> tuple[str, str]:
    if target is None:
        return "", ""
    if isinstance(target, models.Model):
        target = (target._meta.model_name, target.pk)
    kind, ident = str(target[0]), str(target[1])
    if len(kind) > 40 or len(ident) > 64:  # the columns' sizes; SQLite would not say
        raise ValueError(f"audit target too long: {kind!r}, {ident!r}")
    return kind, ident


def _lock_chain(key: str) -> None:
    if connection.vendor == "postgresql":
        lock_id = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, lock_id])
    # SQLite: the IMMEDIATE transaction already holds the write lock (see the docstring).


# AuditEvent's table; each query reads one entry of a (case, seq) unique index, backwards.
_HEAD_OF_GLOBAL = (
    "SELECT seq, hash FROM analysis_auditevent WHERE case_id IS NULL ORDER BY seq DESC LIMIT 1"
)
_HEAD_OF_CASE = (
    "SELECT seq, hash FROM analysis_auditevent WHERE case_id = %s ORDER BY seq DESC LIMIT 1"
)
_CASE_ID = AuditEvent._meta.get_field("case").target_field


def _head(case_id: uuid.UUID | None) -> tuple[int, str]:
    """The chain's last (seq, hash), in plain SQL: building this query with the ORM was a
    third of record()'s cost."""
    with connection.cursor() as cursor:
        if case_id is None:
            cursor.execute(_HEAD_OF_GLOBAL)
        else:
            cursor.execute(_HEAD_OF_CASE, [_CASE_ID.get_db_prep_value(case_id, connection)])
        row = cursor.fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)


def client_of(request) -> tuple[str | None, str]:
    """The client's IP and user agent, as far as this request tells them."""
    if request is None:
        return None, ""
    meta = request.META
    user_agent = meta.get("HTTP_USER_AGENT", "").replace("\x00", "")[:USER_AGENT_MAX]
    return _client_ip(meta), user_agent


def _client_ip(meta) -> str | None:
    remote = _normal_ip(meta.get("REMOTE_ADDR", ""))
    trusted = set(settings.AUDIT_TRUSTED_PROXIES)
    if remote is None or remote not in trusted:
        return remote
    # Behind our own proxies: the client is the last hop they did not add themselves. Hops
    # further left were written by the client and could say anything.
    hops = [h.strip() for h in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    for hop in reversed(hops):
        address = _normal_ip(hop)
        if address is None:
            break
        if address not in trusted:
            return address
    return remote


def _normal_ip(value: str) -> str | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    # The same spelling GenericIPAddressField stores (it cleans IPv6 this way).
    return clean_ipv6_address(str(address)) if address.version == 6 else str(address)


# --- verification ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    chain: str
    ok: bool
    checked: int
    head_seq: int = 0
    head_hash: str = GENESIS
    bad_seq: int | None = None
    bad_event_id: str | None = None
    reason: str = ""
    seals_checked: int = 0

    def describe(self) -> str:
        if self.ok:
            return (
                f"OK {self.chain}: {self.checked} events, head #{self.head_seq} "
                f"{self.head_hash[:16]}, {self.seals_checked} sealed heads matched"
            )
        event = f" event {self.bad_event_id}" if self.bad_event_id else ""
        return f"BROKEN {self.chain} at #{self.bad_seq}{event}: {self.reason}"


def verify(case=None, *, chain: str | None = None, seals=None) -> VerifyResult:
    """Walk one chain from #1: sequence, links, hashes, and every sealed head on the way.

    case: a Case or its id (None: the global chain), or chain: a chain key. seals: a parsed
    seal file (analysis.audit_seal.Seals); read from settings.AUDIT_SEAL_PATH when omitted.
    """
    from analysis.audit_seal import read_seals  # audit_seal imports this module

    case_id = case_id_of(chain) if chain is not None else _case_uuid(case)
    key = AuditEvent.chain_key_for(case_id)
    sealed = (seals if seals is not None else read_seals()).for_chain(key)
    rows = AuditEvent.objects.filter(case_id=case_id).order_by("seq").iterator(chunk_size=2000)
    return _walk(key, rows, sealed)


def verify_all(*, seals=None) -> list[VerifyResult]:
    """Every chain in the database, and every chain the seal file knows about."""
    from analysis.audit_seal import read_seals

    seals = seals if seals is not None else read_seals()
    in_db = AuditEvent.objects.exclude(case_id=None).values_list("case_id", flat=True).distinct()
    keys = {AuditEvent.chain_key_for(case_id) for case_id in in_db} | set(seals.chains())
    keys.discard("global")
    return [verify(chain=key, seals=seals) for key in ["global", *sorted(keys)]]


def case_id_of(chain: str) -> uuid.UUID | None:
    if chain == "global":
        return None
    kind, _, ident = chain.partition(":")
    if kind != "case":
        raise ValueError(f"not a chain key: {chain!r}")
    return uuid.UUID(ident)


def _walk(key: str, rows: Iterable[AuditEvent], sealed: Mapping[int, list]) -> VerifyResult:
    expected, prev, seals_checked = 1, GENESIS, 0
    for event in rows:
        reason = _broken_link(event, expected, prev)
        if not reason and event.seq in sealed:
            seals_checked += 1
            reason = _seal_mismatch(event, sealed[event.seq])
        if reason:
            return VerifyResult(
                key, False, expected - 1, bad_seq=event.seq, bad_event_id=str(event.id),
                reason=reason, seals_checked=seals_checked,
            )  # fmt: skip
        expected, prev = expected + 1, event.hash
    missing = [seq for seq in sealed if seq >= expected]
    if missing:
        return VerifyResult(
            key, False, expected - 1, bad_seq=min(missing), seals_checked=seals_checked,
            reason="this sealed event is missing: the chain was cut short",
        )  # fmt: skip
    return VerifyResult(key, True, expected - 1, expected - 1, prev, seals_checked=seals_checked)


def _broken_link(event: AuditEvent, expected: int, prev: str) -> str:
    if event.seq != expected:
        return f"expected event #{expected} here: events #{expected}–#{event.seq - 1} are missing"
    if event.prev_hash != prev:
        return "its prev_hash is not the previous event's hash: an earlier event was rewritten"
    if event_hash(event) != event.hash:
        return "its hash does not match its contents: the row was changed"
    return ""


def _seal_mismatch(event: AuditEvent, seals: list) -> str:
    for seal in seals:
        if seal.hash != event.hash:
            return (
                f"its hash differs from the head sealed at {seal.at} ({seal.hash[:16]}…): "
                "the chain was rewritten at or before this event"
            )
    return ""
