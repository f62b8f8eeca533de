"""Thin Celery tasks: load by id, call a domain function. Routing lives in settings."""

from __future__ import annotations

from celery import shared_task

from analysis import pipeline


@shared_task(name="analysis.tasks.run_analysis")
def run_analysis(analysis_id: str) -> None:
    pipeline.run_analysis(analysis_id)


@shared_task(name="analysis.tasks.sweep_stale_analyses")
def sweep_stale_analyses() -> int:
    return pipeline.fail_stale_analyses()
