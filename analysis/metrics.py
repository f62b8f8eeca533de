"""Prometheus metrics: every series the site exports is defined here, and only here.

The events come from many processes: the web process (uploads, cancels), each inference
worker (answers, the prefix cache, the batch), the other worker's prefork children (media
jobs, purges) and beat. Why a Redis-backed aggregation rather than prometheus-client's
multiprocess mode: that mode needs every process on one filesystem (PROMETHEUS_MULTIPROC_DIR)
with pids that never collide. In compose each process is a container of its own (each has
pid 7 in its own namespace) and inference workers on other GPU hosts share no disk with the
web host at all; every process here already shares one Redis. So an event adds to a hash in
Redis, in one pipelined round trip (per answer, per chunk, per lookup: never per token),
and `/metrics` renders the hashes with prometheus-client's metric families and exposition
format. What the database or the broker already knows (queue depth, questions queued and
running, each worker's live tokens/s) is read when Prometheus scrapes, not kept twice.

A metric write never fails or stalls the job it counts: with Redis away, writes are
dropped for RETRY_AFTER seconds at a time (one log line when it goes, one when it is back).
Counters live in Redis (AOF in compose), so restarting a process does not reset them.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import redis
from django.conf import settings
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
QUEUES = ("inference", "media", "default")
OUTCOMES = ("succeeded", "failed", "cancelled", "retried")
PREFIX_RESULTS = ("ram", "disk", "miss")
RETRY_AFTER = 5.0  # seconds metric writes are skipped after Redis failed
TIMEOUT = 0.5  # seconds a metric write may wait for Redis
# The Redis transport keeps a queue's messages in one list per priority step (kombu's
# default steps 0, 3, 6, 9; step 0 is the bare queue name).
PRIORITY_SEP, PRIORITY_STEPS = "\x06\x16", (3, 6, 9)


@dataclass(frozen=True)
class Series:
    name: str
    kind: str  # "counter", "histogram" or "gauge"
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


QUESTIONS = Series(
    "gemma_questions", "counter",
    "Questions that ended (succeeded, failed, cancelled) or went back to the queue (retried).",
    ("outcome",),
)  # fmt: skip
QUEUE_WAIT = Series(
    "gemma_queue_wait_seconds", "histogram",
    "Time a job's message waited in its queue before a worker started it.",
    ("queue",), (0.1, 0.5, 1, 2.5, 5, 15, 60, 300, 900, 1800),
)  # fmt: skip
TOKENS = Series("gemma_generated_tokens", "counter", "Tokens generated, by worker.", ("worker",))
DECODE_SECONDS = Series(
    "gemma_decode_seconds", "counter",
    "Seconds answers spent generating after their prompt, summed over answers, by worker: "
    "tokens / these seconds is one answer's tokens/s (the rate of tokens alone is the worker's).",
    ("worker",),
)  # fmt: skip
FIRST_TOKEN = Series(
    "gemma_time_to_first_token_seconds", "histogram",
    "From an answer's start on its worker to its first token (plan, media, prompt evaluation).",
    ("worker",), (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)  # fmt: skip
BATCH = Series(
    "gemma_batch_occupancy", "gauge",
    "Sequences decoding together in a worker's batch (set by the engine).", ("worker",),
)  # fmt: skip
BATCH_SLOTS = Series(
    "gemma_batch_slots", "gauge", "Sequences a worker's batch can hold.", ("worker",)
)
PREFIX_LOOKUPS = Series(
    "gemma_prefix_cache_lookups", "counter",
    "Media prefix cache lookups: a hit in RAM, a hit on disk, or a miss.", ("result",),
)  # fmt: skip
UPLOAD_BYTES = Series(
    "gemma_upload_bytes", "counter",
    "Upload bytes confirmed (on disk and recorded), by protocol (tus).",
    ("protocol",),
)  # fmt: skip
PURGED = Series(
    "gemma_purged", "counter", "Things the retention purge deleted, by kind.", ("kind",)
)
STORED = (
    QUESTIONS, QUEUE_WAIT, TOKENS, DECODE_SECONDS, FIRST_TOKEN, BATCH, BATCH_SLOTS,
    PREFIX_LOOKUPS, UPLOAD_BYTES, PURGED,
)  # fmt: skip
# Read when Prometheus scrapes.
QUEUE_DEPTH = Series(
    "gemma_queue_depth", "gauge", "Messages waiting in each queue of the broker.", ("queue",)
)
IN_STATE = Series(
    "gemma_questions_in_state", "gauge", "Questions queued or running now.", ("status",)
)
WORKER_RATE = Series(
    "gemma_worker_tokens_per_second", "gauge",
    "Each live worker's tokens/s over its latest heartbeat interval, all its answers together.",
    ("worker",),
)  # fmt: skip
WORKER_UP = Series(
    "gemma_worker_up", "gauge", "1 while a worker beats, 0 once it stopped or fell silent.",
    ("worker", "queues"),
)  # fmt: skip
STORE_UP = Series(
    "gemma_metrics_store_up", "gauge", "1 when the series kept in Redis could be read."
)
SCRAPED = (QUEUE_DEPTH, IN_STATE, WORKER_RATE, WORKER_UP, STORE_UP)
ALL = STORED + SCRAPED


# --- writing (any process) -----------------------------------------------------------------


def count_question(outcome: str) -> None:
    _check(outcome, OUTCOMES)
    _Writer.get().send([_add(QUESTIONS, (outcome,), 1)])


def observe_queue_wait(queue: str, seconds: float) -> None:
    if queue in QUEUES:  # anything else is not ours to label (a typo'd route shows as none)
        _Writer.get().send(_observe(QUEUE_WAIT, (queue,), max(seconds, 0.0)))


def observe_answer(record: dict, worker: str | None = None) -> None:
    """Tokens, decode time and time to first token of one answer, from its record."""
    timings = record.get("timings") or {}
    tokens = int((record.get("tokens") or {}).get("completion") or 0)
    if not timings:
        return
    labels = (worker or this_worker(),)
    commands = [
        _add(TOKENS, labels, tokens),
        _add(DECODE_SECONDS, labels, float(timings.get("generation_s") or 0.0)),
    ]
    if tokens:  # an answer cut before its first token has no time to it
        commands += _observe(FIRST_TOKEN, labels, float(timings["time_to_first_token_s"]))
    _Writer.get().send(commands)


def set_batch_occupancy(active: int, slots: int | None = None, worker: str | None = None) -> None:
    """The engine says how many sequences decode together now (and how many fit)."""
    labels = (worker or this_worker(),)
    commands = [("hset", _key(BATCH), _field(labels), active)]
    if slots is not None:
        commands.append(("hset", _key(BATCH_SLOTS), _field(labels), slots))
    _Writer.get().send(commands)


def count_prefix_lookup(result: str) -> None:
    _check(result, PREFIX_RESULTS)
    _Writer.get().send([_add(PREFIX_LOOKUPS, (result,), 1)])


def count_upload_bytes(n: int) -> None:
    # The label stays: dashboards sum by it, and the counter kept in Redis carries it.
    _Writer.get().send([_add(UPLOAD_BYTES, ("tus",), n)])


def record_purge(kind: str, count: int = 1) -> None:
    """The retention purge deleted `count` things of `kind` (e.g. "media", "answer")."""
    if count:
        _Writer.get().send([_add(PURGED, (kind,), count)])


def this_worker() -> str:
    """The label of this process: its Celery node name, or the host name outside a worker."""
    from analysis import heartbeat

    beat = heartbeat.current()
    return beat.name if beat is not None else socket.gethostname()


def _check(value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")


def _key(series: Series) -> str:
    return f"{settings.METRICS_PREFIX}:{series.name}"


def _field(labels: tuple[str, ...]) -> str:
    return json.dumps(list(labels), separators=(",", ":"))


def _add(series: Series, labels: tuple[str, ...], amount: float) -> tuple:
    return ("hincrbyfloat", _key(series), _field(labels), amount)


def _observe(series: Series, labels: tuple[str, ...], value: float) -> list[tuple]:
    """A histogram keeps one count per bucket (not cumulative: one write per observation)."""
    bucket = next((i for i, bound in enumerate(series.buckets) if value <= bound), None)
    field = _field(labels)
    return [
        ("hincrbyfloat", _key(series), f"{field}|{'inf' if bucket is None else bucket}", 1),
        ("hincrbyfloat", _key(series), f"{field}|sum", value),
    ]


class _Writer:
    """This process' connection for metric writes; writes are skipped for a while after
    Redis failed, so an outage costs a job at most one short timeout every RETRY_AFTER."""

    _instance: _Writer | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.url = settings.REDIS_URL
        self.client = _client(self.url)
        self.skip_until = 0.0
        self.failing = False

    @classmethod
    def get(cls) -> _Writer:
        with cls._lock:
            if cls._instance is None or cls._instance.url != settings.REDIS_URL:
                cls._instance = cls()
            return cls._instance

    def send(self, commands: list[tuple]) -> None:
        now = time.monotonic()
        if now < self.skip_until:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for method, *args in commands:
                getattr(pipe, method)(*args)
            pipe.execute()
        except redis.RedisError as exc:
            self.skip_until = now + RETRY_AFTER
            if not self.failing:
                log.warning("metrics: cannot reach Redis (%s); dropping metric writes", exc)
            self.failing = True
            return
        if self.failing:
            log.warning("metrics: Redis reachable again")
        self.failing = False


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)


# --- reading (the web process, when Prometheus scrapes) --------------------------------------


def exposition() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return generate_latest(registry)


class _Collector:
    def collect(self) -> Iterator:
        workers = _workers()
        live = [w for w in workers if not w.down]
        client = _Writer.get().client  # the connection this process writes with
        try:
            stored = _read_stored(client)
        except redis.RedisError as exc:
            log.warning("metrics: cannot read the series kept in Redis (%s)", exc)
            stored = None
        yield _gauge(STORE_UP, [((), 0 if stored is None else 1)])
        for series in STORED if stored is not None else ():
            yield _family(series, stored[series.name], live)
        broker = client if settings.CELERY_BROKER_URL == settings.REDIS_URL else None
        depths = _queue_depths(broker or _client(settings.CELERY_BROKER_URL))
        if depths is not None:  # the broker is away: no depth rather than a wrong zero
            yield _gauge(QUEUE_DEPTH, depths)
        yield _gauge(IN_STATE, _in_state())
        yield _gauge(WORKER_RATE, [((w.name,), w.tokens_per_second or 0.0) for w in live])
        yield _gauge(WORKER_UP, [((w.name, w.queues), 0 if w.down else 1) for w in workers])


def _read_stored(client: redis.Redis) -> dict[str, dict[str, float]]:
    pipe = client.pipeline(transaction=False)
    for series in STORED:
        pipe.hgetall(_key(series))
    rows = pipe.execute()
    return {
        series.name: {k.decode(): float(v) for k, v in row.items()}
        for series, row in zip(STORED, rows, strict=True)
    }


def _family(series: Series, values: dict[str, float], live: list):
    if series.kind == "counter":
        family = CounterMetricFamily(series.name, series.help, labels=series.labels)
        for field, value in sorted(values.items()):
            family.add_metric(json.loads(field), value)
        return family
    if series.kind == "gauge":  # set by a worker: shown while that worker is alive
        names = {w.name for w in live}
        rows = [(tuple(json.loads(f)), v) for f, v in values.items()]
        return _gauge(series, [(labels, v) for labels, v in rows if labels[0] in names])
    return _histogram(series, values)


def _histogram(series: Series, values: dict[str, float]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(series.name, series.help, labels=series.labels)
    per_labels: dict[str, dict[str, float]] = defaultdict(dict)
    for field, value in values.items():
        labels, _, part = field.rpartition("|")
        per_labels[labels][part] = value
    for labels, parts in sorted(per_labels.items()):
        running, buckets = 0.0, []
        for i, bound in enumerate(series.buckets):
            running += parts.get(str(i), 0.0)
            buckets.append((_bound(bound), running))
        buckets.append(("+Inf", running + parts.get("inf", 0.0)))
        family.add_metric(json.loads(labels), buckets, sum_value=parts.get("sum", 0.0))
    return family


def _bound(value: float) -> str:
    return repr(float(value))


def _gauge(series: Series, rows) -> GaugeMetricFamily:
    family = GaugeMetricFamily(series.name, series.help, labels=series.labels)
    for labels, value in rows:
        family.add_metric(list(labels), value)
    return family


def _queue_depths(client: redis.Redis) -> list[tuple[tuple[str], int]] | None:
    pipe = client.pipeline(transaction=False)
    for queue in QUEUES:
        pipe.llen(queue)
        for step in PRIORITY_STEPS:
            pipe.llen(f"{queue}{PRIORITY_SEP}{step}")
    try:
        counts = pipe.execute()
    except redis.RedisError:
        return None
    per = 1 + len(PRIORITY_STEPS)
    return [((q,), sum(counts[i * per : (i + 1) * per])) for i, q in enumerate(QUEUES)]


def _in_state() -> list[tuple[tuple[str], int]]:
    from django.db.models import Count

    from analysis.models import Analysis

    wanted = (Analysis.Status.QUEUED, Analysis.Status.RUNNING)
    counts = dict(
        Analysis.objects.filter(status__in=wanted)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return [((str(status),), counts.get(status, 0)) for status in wanted]


@dataclass(frozen=True)
class _Worker:
    name: str
    queues: str
    tokens_per_second: float | None
    down: bool


def _workers() -> list[_Worker]:
    from django.utils import timezone

    from analysis.models import WorkerHeartbeat

    now = timezone.now()
    return [
        _Worker(w.name, w.queues, w.tokens_per_second, w.is_down(now))
        for w in WorkerHeartbeat.objects.order_by("name")
    ]
