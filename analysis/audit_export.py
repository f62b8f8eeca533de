"""Audit trail exports: CSV for people, JSON for machines (an external verifier).

Both carry every hashed field, so the hashes can be recomputed outside this application
with the recipe in analysis/audit_hash.py. An export of a whole chain (no filters) can be
verified link by link; a filtered export proves each event on its own.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable

from analysis.audit_hash import HASH_VERSION, body_hash, canonical, iso_utc
from analysis.models import AuditEvent

FIELDS = [
    "chain", "seq", "id", "created_at", "case", "actor", "actor_username", "action",
    "target_type", "target_id", "ip", "user_agent", "details", "body_hash", "redacted",
    "prev_hash", "hash",
]  # fmt: skip
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection). User
# agents and details come from outside, so such cells get a leading apostrophe in the CSV;
# the JSON export keeps every value exactly as hashed.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def event_row(event: AuditEvent) -> dict:
    return {
        "chain": event.chain_key,
        "seq": event.seq,
        "id": str(event.id),
        "created_at": iso_utc(event.created_at),
        "case": str(event.case_id) if event.case_id else None,
        "actor": str(event.actor_id) if event.actor_id else None,
        "actor_username": event.actor.get_username() if event.actor_id else None,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "details": event.details,
        # A redacted body is gone; the hash it had stands in for it (see analysis/audit.py).
        "body_hash": event.redacted_body_hash
        or body_hash(event.ip, event.user_agent, event.details),
        "redacted": event.redacted_body_hash is not None,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def to_csv(events: Iterable[AuditEvent]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for event in events:
        row = event_row(event)
        row["details"] = canonical(row["details"]).decode("ascii")
        writer.writerow({key: _cell(value) for key, value in row.items()})
    return out.getvalue()


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_json(events: Iterable[AuditEvent], *, header: dict) -> str:
    """One JSON document: `header` (chain, head, filters, who exported) and the events."""
    document = {
        "format": "gemma-web-audit-export",
        "hash_version": HASH_VERSION,
        **header,
        "events": [event_row(event) for event in events],
    }
    return json.dumps(document, indent=1, ensure_ascii=False)
