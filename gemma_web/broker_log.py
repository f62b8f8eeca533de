"""One log line per broker state change, not one per reconnection attempt.

While the broker is down, Celery's consumer and beat log every retry, each with its
traceback: a 10 s outage was thousands of lines, and the line that says what happened was
lost among them. This filter lets the first "lost/cannot connect" record of an outage
through (without its traceback) and drops the rest until a record says it connected again.

No Django here: it is installed on Celery's log handlers at worker and beat start.
"""

from __future__ import annotations

import logging
import re

DOWN = re.compile(
    r"Connection to broker lost|Cannot connect to|Trying again in|Connection error|"
    r"Error \d+ connecting|Connection refused|Error while reading from|ConnectionError|"
    r"Timeout connecting|Connection closed by server|restarting the consumer"
)
UP = re.compile(r"^Connected to (redis|rediss|valkey|amqp|memory)s?://")
# Housekeeping Celery logs on every reconnection: said once per outage, with the "back" line.
RECONNECT_NOISE = re.compile(r"^Skipping prefetch count reduction|^missed heartbeat from")


class OutageFilter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.name == "py.warnings" and "connection_loss" in message:
            return False  # Celery's 9-line notice about a future default, on every reconnect
        if not record.name.startswith(("celery", "kombu")):
            return True  # the site's own lines say what they mean already
        if UP.search(message):
            was_down, self.down = self.down, False
            if was_down:
                record.msg, record.args = f"broker reachable again: {message}", ()
            return True
        if RECONNECT_NOISE.search(message):
            return False
        if self.down and record.levelno >= logging.WARNING:
            return False  # the same outage, seen again by another part of the consumer
        if not DOWN.search(message):
            return True
        self.down = True
        reason = _reason(record, message)
        record.msg, record.args = f"broker unreachable ({reason}): reconnecting with backoff", ()
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def _reason(record: logging.LogRecord, message: str) -> str:
    if record.exc_info and record.exc_info[1] is not None:
        return f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"[:200]
    return message.splitlines()[0][:200]
