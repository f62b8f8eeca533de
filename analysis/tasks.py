"""Thin Celery tasks: load by id, call a domain function. Routing lives in settings."""

from __future__ import annotations

from celery import shared_task

from analysis import access, audit_seal, pipeline, recovery, retention_purge
from analysis.media import processing, removal, uploads


@shared_task(name="analysis.tasks.run_analysis")
def run_analysis(analysis_id: str) -> None:
    pipeline.run_analysis(analysis_id)


@shared_task(name="analysis.tasks.sweep_stale_analyses")
def sweep_stale_analyses() -> int:
    return recovery.sweep()


@shared_task(name="analysis.tasks.seal_audit_chains")
def seal_audit_chains() -> int:
    return len(audit_seal.seal())


@shared_task(name="analysis.tasks.process_media")
def process_media(asset_id: str) -> None:
    processing.process_asset(asset_id)


@shared_task(name="analysis.tasks.clean_expired_uploads")
def clean_expired_uploads() -> int:
    return uploads.expire() + removal.sweep_deleted()


@shared_task(name="analysis.tasks.record_break_glass_expiries")
def record_break_glass_expiries() -> int:
    return access.record_break_glass_expiries()


@shared_task(name="analysis.tasks.purge_expired")
def purge_expired() -> int:
    return retention_purge.run(trigger="beat").items


@shared_task(name="analysis.tasks.purge_case")
def purge_case(case_id: str) -> int:
    """An approved early deletion: that case's purge, now."""
    return retention_purge.run(trigger="early deletion", case_ids=[case_id]).items
