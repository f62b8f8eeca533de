"""The audit trail's hash recipe: what an event's hash covers and how it is computed.

Version 1 (what an external verifier recomputes from a JSON export):
    body_hash = sha256(canonical({"ip", "user_agent", "details"}))
    hash      = sha256(canonical({"v": 1, "chain", "seq", "id", "case", "actor", "action",
                                  "target_type", "target_id", "created_at", "body_hash",
                                  "prev_hash"}))
canonical() is JSON with sorted keys, separators (",", ":"), ASCII only; ids are strings
(null when absent), created_at is UTC "YYYY-MM-DDTHH:MM:SS.ffffffZ", and an IP is written
the way Python's ipaddress `.exploded` does ("2001:0db8:0000:...:0001"; IPv4 as usual).

The body is covered only through `body_hash`, so retention may clear a body (analysis/audit.py,
`redact()`) and keep its hash: the chain still verifies.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from datetime import UTC

from django.core.serializers.json import DjangoJSONEncoder

from analysis.models import AuditEvent

GENESIS = "0" * 64  # the prev_hash of a chain's first event
HASH_VERSION = 1


def canonical(value) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def body_hash(ip: str | None, user_agent: str, details) -> str:
    # The database may print an address differently from how it was written (PostgreSQL's
    # inet does): hash the exploded form, which is the same however it was printed.
    exploded = ipaddress.ip_address(ip).exploded if ip else None
    return _sha256(canonical({"ip": exploded, "user_agent": user_agent, "details": details}))


def event_hash(event: AuditEvent) -> str:
    header = {
        "v": HASH_VERSION,
        "chain": event.chain_key,
        "seq": event.seq,
        "id": str(event.id),
        "case": _str_or_none(event.case_id),
        "actor": _str_or_none(event.actor_id),
        "action": str(event.action),
        "target_type": event.target_type,
        "target_id": event.target_id,
        "created_at": iso_utc(event.created_at),
        "body_hash": event.redacted_body_hash
        or body_hash(event.ip, event.user_agent, event.details),
        "prev_hash": event.prev_hash,
    }
    return _sha256(canonical(header))


def iso_utc(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def json_safe(value):
    """`value` as the database will give it back, so the hash of what we store is stable.

    DjangoJSONEncoder turns UUIDs and datetimes into strings. NUL characters and lone
    surrogates are replaced (PostgreSQL's jsonb refuses them), and integral floats become
    ints (jsonb prints 1e16 back as 10000000000000000).
    """
    return _scrub(json.loads(json.dumps(value, cls=DjangoJSONEncoder, allow_nan=False)))


def _scrub(value):
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _str_or_none(value) -> str | None:
    return None if value is None else str(value)
