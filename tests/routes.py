"""Every URL pattern and WebSocket route of the site, enumerated, with ids to fill them.

The attack tests walk these lists, so a route added anywhere is attacked the day it lands.
Ids come from a victim case's real objects: a parameter `<x>_id` is filled with the victim
case's object of the model whose name ends in x (an `<upload_id>` with a MediaUpload ...), so
a new route on a new model needs no entry here, only such an object in the world.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver

from analysis.routing import websocket_urlpatterns

# Django's admin has its own permission system and registers no case data (accounts only).
SKIPPED_NAMESPACES = {"admin"}


@dataclass(frozen=True)
class Route:
    name: str  # "namespace:name", or the pattern when it has no name
    pattern: str
    params: dict  # parameter name → converter name ("uuid", "int", "str", "path", "slug")
    defaults: dict

    def url(self, values: dict) -> str:
        path = self.pattern
        for name, kind in self.params.items():
            path = path.replace(f"<{kind}:{name}>", str(values[name]))
            path = path.replace(f"<{name}>", str(values[name]))
        return "/" + path


def _converter_name(converter) -> str:
    return type(converter).__name__.removesuffix("Converter").lower()


def _walk(patterns, prefix: str, namespace: str, converters: dict):
    for entry in patterns:
        pattern = getattr(entry.pattern, "_route", None)
        if pattern is None:
            raise AssertionError(f"{entry}: regex patterns are not enumerated; use path()")
        found = {**converters, **entry.pattern.converters}
        if isinstance(entry, URLResolver):
            inner = namespace if entry.namespace is None else entry.namespace
            if inner not in SKIPPED_NAMESPACES:
                yield from _walk(entry.url_patterns, prefix + pattern, inner, found)
        elif isinstance(entry, URLPattern):
            full = prefix + pattern
            name = f"{namespace}:{entry.name}" if namespace else (entry.name or full)
            params = {key: _converter_name(conv) for key, conv in found.items()}
            yield Route(name, full, params, dict(entry.default_args))


def http_routes() -> list[Route]:
    return list(_walk(get_resolver().url_patterns, "", "", {}))


def websocket_routes() -> list[Route]:
    return list(_walk(websocket_urlpatterns, "", "", {}))


def random_value(kind: str):
    return {"int": 987654321, "uuid": uuid.uuid4()}.get(kind, "nothing-here.jpg")


def object_for(param: str, case):
    """The object of `case` a route parameter names (see the module docstring)."""
    if param == "case_id":
        return case
    stem = param.removesuffix("_id").replace("_", "")
    for model in apps.get_app_config("analysis").get_models():
        fields = {f.name for f in model._meta.get_fields()}
        if model._meta.model_name.endswith(stem) and "case" in fields:
            rows = model.objects.filter(case=case).order_by("pk")
            if hasattr(model, "deleted_at"):
                rows = rows.filter(deleted_at__isnull=True)
            if obj := rows.first():
                return obj
    if stem == "user":  # an account: the case's first owner
        return case.memberships.order_by("pk").first().user
    if stem == "run":  # a purge run spans cases: the newest
        from analysis.models import PurgeRun

        return PurgeRun.objects.order_by("-started_at").first()
    if stem == "model":
        from analysis.models import LanguageModel

        return LanguageModel.objects.order_by("pk").first()
    return None


def values_for(route: Route, case) -> dict:
    """Real values from `case` for every parameter; raises naming a parameter it cannot fill."""
    values = {}
    for param in route.params:
        if param == "token":  # an invitation's secret, no id of the case: an unissued one
            values[param] = random_value(route.params[param])
            continue
        if param == "name":  # derived file names of the case's first media item
            asset = object_for("asset_id", case)
            values[param] = asset.derived["thumbnail"]
            continue
        obj = object_for(param, case)
        if obj is None:
            raise LookupError(
                f"{route.name}: no object for <{param}> in the victim case; add one to the "
                "world in tests/attack_world.py"
            )
        values[param] = obj.pk
    return values


def random_values(route: Route) -> dict:
    return {param: random_value(kind) for param, kind in route.params.items()}
