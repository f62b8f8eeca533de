"""Strict reading of JSON request bodies: types and ranges checked, the field named.

A JSON API that coerces ("10" → 10, true → 1, 1.5 → 1) accepts requests no client meant
to send; every field is read here with its exact type, and a refusal names the field.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse


class BadInput(Exception):
    """A request body or field that is not what the API takes; answered 400 with the field."""

    def __init__(self, message: str, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.status = status

    def response(self) -> JsonResponse:
        body = {"error": str(self)}
        if self.field:
            body["field"] = self.field
        return JsonResponse(body, status=self.status)


def json_object(request: HttpRequest) -> dict:
    if request.content_type != "application/json":
        raise BadInput("Send a JSON object with Content-Type: application/json.", status=415)
    try:
        data = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError):
        raise BadInput("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise BadInput("The request body must be a JSON object.")
    return data


def whole_number(data: dict, name: str) -> int:
    """A required whole number, 0 or more (JSON true/false and 1.0 are not numbers here)."""
    value = data.get(name)
    if value is None:
        raise BadInput(f"{name} is required.", name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{name} must be a whole number, not {_kind(value)}.", name)
    if value < 0:
        raise BadInput(f"{name} must not be negative.", name)
    return value


def string(data: dict, name: str, *, required: bool = False, max_length: int = 1000) -> str:
    value = data.get(name)
    if value is None:
        if required:
            raise BadInput(f"{name} is required.", name)
        return ""
    if not isinstance(value, str):
        raise BadInput(f"{name} must be a string, not {_kind(value)}.", name)
    if len(value) > max_length:
        raise BadInput(f"{name} is longer than {max_length} characters.", name)
    return value


def _kind(value) -> str:
    names = {bool: "true/false", int: "a number", float: "a number", str: "a string"}
    names |= {list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)
