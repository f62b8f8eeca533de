"""Checking a case report handed out earlier against the case it came from.

The file's SHA-256 must be the one its export event (`case.exported`) recorded; the report
id printed in it must be that event's; every 64-hex hash it shows must be one the case knows
(its media, its audit events, the model files and templates of its answers); every item
uploaded before the report was made must be listed; and the case's chain must verify.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from analysis import audit
from analysis.audit_hash import GENESIS, iso_utc
from analysis.models import AuditEvent, Case

HEX64 = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


@dataclass
class ReportCheck:
    ok: bool = True
    facts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        self.ok = False
        self.problems.append(problem)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def report_text(data: bytes) -> str:
    """The report's text: PDF pages through pypdf, HTML through the standard parser."""
    if data.startswith(b"%PDF-"):
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(data))
        return "\n".join(page.extract_text() or "" for page in reader.pages)
    parser = _Text()
    parser.feed(data.decode("utf-8", errors="replace"))
    return " ".join(parser.parts)


def known_hashes(case: Case) -> set[str]:
    known = set(case.media.values_list("sha256", flat=True))
    known |= set(AuditEvent.objects.filter(case=case).values_list("hash", flat=True))
    for record in case.analyses.exclude(record={}).values_list("record", flat=True):
        model = record.get("model") or {}
        known |= {model.get("gguf_sha256"), model.get("mmproj_sha256")}
        known |= {record.get("template_sha256")}
        known |= {m.get("sha256") for m in record.get("media") or []}
    known.add(GENESIS)
    return {h for h in known if h}


def check(data: bytes) -> ReportCheck:
    result = ReportCheck()
    digest = hashlib.sha256(data).hexdigest()
    result.facts.append(f"SHA-256 {digest}")
    events = AuditEvent.objects.filter(action=AuditEvent.Action.CASE_EXPORTED)
    event = events.filter(details__sha256=digest).select_related("case").first()
    if event is None:
        result.fail(
            "no case.exported event records this SHA-256: "
            "not a report of this site, or changed since"
        )
        return result
    case = event.case
    result.facts.append(
        f"exported {iso_utc(event.created_at)} as event #{event.seq} of case "
        f"{case.id} ({case.title})"
    )
    text = report_text(data)
    if event.details.get("report_id") not in text:
        result.fail(f"the report id {event.details.get('report_id')} is not in the file")
    shown = set(HEX64.findall(text))
    known = known_hashes(case)
    for unknown in sorted(shown - known):
        result.fail(f"hash {unknown} is not one this case knows")
    listed = case.media.filter(created_at__lte=event.created_at)
    for sha256, name in listed.values_list("sha256", "filename"):
        if sha256 not in shown:
            result.fail(f"item {name} ({sha256[:16]}…) is missing from the report")
    result.facts.append(f"{len(shown & known)} hashes checked against the case")
    chain = audit.verify(case)
    if chain.ok:
        result.facts.append(chain.describe())
    else:
        result.fail(chain.describe())
    return result
