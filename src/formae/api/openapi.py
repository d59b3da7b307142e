"""The OpenAPI document says what the API really answers: 400 (not 422), and the errors every route can give.

FastAPI documents a ``422`` for every route with parameters, but this API answers malformed requests
with ``400`` and a ``Problem`` body (app.py); and every route can also answer ``401``/``403`` (the
API guard), ``503`` (the datastore failed), a route with a path parameter ``404``, and one that
changes something ``409``. Clients and schemathesis hold the API to this document, so it is
rewritten here once, after FastAPI generates it, rather than repeated on every route.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

_ERROR = {"$ref": "#/components/schemas/ErrorBody"}
_ERROR_BODY = {
    "title": "ErrorBody",
    "description": "A rejected command ({error, problems}) or another HTTP error ({detail})",
    "anyOf": [{"$ref": "#/components/schemas/Problem"}, {"$ref": "#/components/schemas/ErrorDetail"}],
}
_ALWAYS = {
    "400": "Malformed request, or a command the agent rejects",
    "401": "No valid bearer token",
    "403": "The token's role does not allow this",
    "503": "The datastore failed, or a namespace the command needs has no healthy plugin",
}
_CHANGES = {"409": "Conflicts with the current state (a running command, a join without TLS)"}
_PATH_PARAMETER = {"404": "No such object"}


def install(app: FastAPI, *, error_models: dict[str, Any]) -> None:
    """Make ``app.openapi()`` return the corrected document; ``error_models`` are Problem and ErrorDetail."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, routes=app.routes)
            _correct(document, error_models)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _correct(document: dict[str, Any], error_models: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(error_models)
    schemas["ErrorBody"] = _ERROR_BODY
    for schema in ("HTTPValidationError", "ValidationError"):
        schemas.pop(schema, None)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            errors = {**_ALWAYS}
            if "{" in path:
                errors.update(_PATH_PARAMETER)
            if method in ("post", "put", "patch", "delete"):
                errors.update(_CHANGES)
            for status, description in errors.items():
                responses.setdefault(
                    status, {"description": description, "content": {"application/json": {"schema": _ERROR}}}
                )
