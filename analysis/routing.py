from __future__ import annotations

from django.urls import path

from analysis.consumers import CaseConsumer

websocket_urlpatterns = [
    path("ws/cases/<uuid:case_id>/", CaseConsumer.as_asgi(), name="ws-case"),
]
