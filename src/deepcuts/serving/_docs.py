"""The API's documentation: every error status in the OpenAPI spec, and ``/docs`` offline.

:func:`document_errors` adds to each operation of the spec the error responses the service
can give it (the JSON object ``{"error": "..."}``): 400 (bad value, or a Host header that is
not allowed: every operation), 401 (token missing: writes and admin endpoints), 403
(cross-origin write), 404 (unknown user, artist or job: operations with a path parameter and
the retrain status), 409 (conflict), 413 (over a size or work limit: writes), 415 (not a JSON
or multipart body: writes), 422 (invalid fields) and 503 (no model loaded yet, or a worker
still loading the newest model).

:func:`mount_docs` serves Swagger UI from the files of the ``fastapi-offline`` package (no
CDN: ``/docs`` works without internet access); without that package ``/docs`` is a plain page
linking the spec.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ERROR_STATUSES", "document_errors", "mount_docs", "statuses"]

ERROR_STATUSES = {
    400: "Bad value, or a Host header that is not allowed",
    401: "The server's token is needed (Authorization: Bearer TOKEN)",
    403: "Cross-origin write refused",
    404: "Unknown user, artist or retrain job",
    409: "Conflict with the stored state (user exists, a retrain runs)",
    413: "Over a size or work limit (the message names it)",
    415: "Writes take a JSON body (history uploads: multipart/form-data)",
    422: "Invalid request fields",
    503: "No model is loaded yet, or the newest one is still loading",
}
_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "detail": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["error"],
}
#: operations with statuses beyond the rule of :func:`statuses`
_EXTRA = {
    ("post", "/retrain"): (409,),
    ("delete", "/retrain"): (404, 409),
    ("get", "/retrain"): (404,),
    ("post", "/users/{user}/history"): (409,),
}
_ADMIN = {"/models", "/retrain"}


def statuses(method: str, path: str, op: dict) -> list[int]:
    """The error statuses operation ``method path`` (its OpenAPI object ``op``) can give.

    >>> statuses("get", "/users/{user}/personas", {"parameters": [{"in": "query"}]})
    [400, 404, 422, 503]
    """
    out = {400}
    write = method not in ("get", "head", "options")
    if write:
        out |= {401, 403, 413, 415, 422}
    if path in _ADMIN:
        out.add(401)
    if "{" in path:
        out |= {404, 422}
    if op.get("parameters") or op.get("requestBody"):
        out.add(422)
    if path not in ("/health", "/models") and not path.startswith("/retrain"):
        out.add(503)
    out |= set(_EXTRA.get((method, path), ()))
    return sorted(out)


def document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` list every error status of every operation."""
    build = app.openapi

    def openapi():
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        for path, ops in spec.get("paths", {}).items():
            for method, op in ops.items():
                responses = op.setdefault("responses", {})
                for code in statuses(method, path, op):
                    responses.setdefault(
                        str(code),
                        {
                            "description": ERROR_STATUSES[code],
                            "content": {"application/json": {"schema": _ERROR_SCHEMA}},
                        },
                    )
                if "422" in responses:  # FastAPI's own shape is not ours
                    responses["422"]["content"] = {"application/json": {"schema": _ERROR_SCHEMA}}
        app.openapi_schema = spec
        return spec

    app.openapi = openapi


def mount_docs(app: FastAPI) -> None:
    """Serve ``/docs`` without a CDN (call with ``FastAPI(docs_url=None, redoc_url=None)``)."""
    try:
        static = resources.files("fastapi_offline") / "static"
        ok = (static / "swagger-ui-bundle.js").is_file()
    except ModuleNotFoundError:
        ok = False
    if ok:
        app.mount("/docs-static", StaticFiles(directory=str(static)), name="docs-static")

        @app.get("/docs", include_in_schema=False)
        def docs():
            return get_swagger_ui_html(
                openapi_url=app.openapi_url,
                title=f"{app.title} API",
                swagger_js_url="/docs-static/swagger-ui-bundle.js",
                swagger_css_url="/docs-static/swagger-ui.css",
                swagger_favicon_url="/docs-static/favicon.png",
            )

    else:

        @app.get("/docs", include_in_schema=False)
        def docs():
            return HTMLResponse(
                f"<!doctype html><title>{app.title} API</title><p>The API is described by its "
                f'OpenAPI spec: <a href="{app.openapi_url}">{app.openapi_url}</a> (install '
                "fastapi-offline for Swagger UI without internet access).</p>"
            )
