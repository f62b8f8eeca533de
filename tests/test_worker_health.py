"""Staff see each worker's health from its heartbeat; a silent one is shown down."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from analysis.models import Analysis, WorkerHeartbeat

pytestmark = pytest.mark.django_db


def test_staff_see_each_worker_and_which_are_down(client, people, django_user_model, settings):
    now = timezone.now()
    job = Analysis.objects.create(case=people.case, created_by=people.bob,
                                  question="Secret question", status="running")  # fmt: skip
    WorkerHeartbeat.objects.create(
        name="inference@gpu-1", host="gpu-1", pid=41, queues="inference", model_name="gemma-4",
        current_analysis=job, tokens_per_second=37.5, started_at=now, beat_at=now,
    )  # fmt: skip
    WorkerHeartbeat.objects.create(
        name="inference@gpu-2", host="gpu-2", pid=42, queues="inference", model_name="gemma-4",
        started_at=now, beat_at=now - timedelta(seconds=settings.WORKER_DOWN_AFTER + 5),
    )  # fmt: skip
    staff = django_user_model.objects.create_user("sam", password="x", is_staff=True)
    client.force_login(people.alice)  # a case owner is not staff
    assert client.get(reverse("staff-workers")).status_code == 404
    client.force_login(staff)
    page = client.get(reverse("staff-workers")).content.decode()
    up = page[page.index("inference@gpu-1") : page.index("inference@gpu-2")]
    down = page[page.index("inference@gpu-2") :]
    assert "gpu-1" in up and "gemma-4" in up and "37.5" in up and people.case.title in up
    assert ">Up<" in up and ">Down<" in down and "idle" in down
    assert "Secret question" not in page  # metadata only: the question stays in the case
