"""Expected refusals are one log line, not a traceback.

Django logs a PermissionDenied (403) and a SuspiciousOperation (400) with the exception's
traceback. Both are the access wall doing its job: the line says who was refused where; the
traceback (~55 lines of framework frames) only buries real errors. 5xx keep theirs.
"""

from __future__ import annotations

import logging


class RefusalsWithoutTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if record.exc_info and (status is None or status < 500) and _is_refusal(record):
            record.exc_info = None
            record.exc_text = None
        return True


def _is_refusal(record: logging.LogRecord) -> bool:
    if record.name.startswith("django.security"):
        return True  # SuspiciousOperation: always answered 400
    return 400 <= getattr(record, "status_code", 0) < 500
