from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gemma_web.settings")
# Django must be set up before anything imports models (the consumers do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from analysis.routing import websocket_urlpatterns  # noqa: E402
from gemma_web.body_limit import BodyLimit  # noqa: E402
from gemma_web.gc_tuning import settle  # noqa: E402
from gemma_web.upload_patch import UploadPatch  # noqa: E402
from gemma_web.ws_origin import SameOriginValidator  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Bodies over their limit are refused while they stream, before Django spools them;
        # tus PATCH bodies then stream straight to disk (UploadPatch), the rest is Django's.
        "http": BodyLimit(UploadPatch(django_asgi_app)),
        # Origin: scheme, host and port of this site (or a trusted origin), not the host alone.
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
# Everything is imported: what lives now lives for the process (no collector pauses on it).
settle()
