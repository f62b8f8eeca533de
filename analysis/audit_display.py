"""How the audit page shows an event to a person: the target by its name, details as facts.

The stored event keeps ids and raw JSON (that is what the hash covers); this only reads them.
Names are looked up once per page and kind, never per row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.contrib.auth import get_user_model

from analysis.models import Analysis, AuditEvent, Case, MediaAsset, Membership, ReviewNote

LABELS = {
    "mediaasset": "item",
    "analysis": "answer",
    "case": "case",
    "membership": "member",
    "reviewnote": "note",
    "breakglass": "break-glass",
    "user": "user",
    "audit_chain": "audit trail",
    "languagemodel": "model",
}


def _names(kind: str, ids: set[str]) -> dict[str, str]:
    if kind == "mediaasset":
        rows = MediaAsset.objects.filter(pk__in=ids).values_list("pk", "filename")
    elif kind == "analysis":
        rows = Analysis.objects.filter(pk__in=ids).values_list("pk", "question")
    elif kind == "case":
        rows = Case.objects.filter(pk__in=ids).values_list("pk", "title")
    elif kind == "membership":
        numeric = [i for i in ids if i.isdigit()]
        rows = Membership.objects.filter(pk__in=numeric).values_list("pk", "user__username")
    elif kind == "reviewnote":
        rows = ReviewNote.objects.filter(pk__in=ids).values_list("pk", "text")
    elif kind == "user":
        numeric = [i for i in ids if i.isdigit()]
        rows = get_user_model().objects.filter(pk__in=numeric).values_list("pk", "username")
    else:
        return {}
    return {str(pk): _short(str(name)) for pk, name in rows}


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def target_names(events: Iterable[AuditEvent]) -> dict[tuple[str, str], str]:
    wanted: dict[str, set[str]] = {}
    for event in events:
        if event.target_type:
            wanted.setdefault(event.target_type, set()).add(event.target_id)
    names = {}
    for kind, ids in wanted.items():
        for ident, name in _names(kind, ids).items():
            names[(kind, ident)] = name
    return names


def target_label(event: AuditEvent, names: dict) -> dict:
    kind = event.target_type
    return {
        "kind": LABELS.get(kind, kind.replace("_", " ")),
        "name": names.get((kind, event.target_id), ""),
        "id": event.target_id,
    }


def detail_facts(details) -> list[tuple[str, str]]:
    """Top-level keys as readable label/value pairs; nested values as compact JSON."""
    facts = []
    for key, value in sorted((details or {}).items()):
        if isinstance(value, (dict, list)):
            shown = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
        elif value is None or value == "":
            shown = "—"
        else:
            shown = str(value)
        facts.append((key.replace("_", " "), shown))
    return facts


def rows(events: list[AuditEvent]) -> list[dict]:
    names = target_names(events)
    return [
        {"event": e, "target": target_label(e, names), "facts": detail_facts(e.details)}
        for e in events
    ]
