"""The producer API's contract: an OpenAPI 3.0 document, served at ``GET /openapi.json``.

Built from the same names the routes use (:data:`fleet.web.API_TASKS`, the canvas kinds), so a
task added to the API appears in its contract. Every status a route can answer is listed: a
client, or a property-based fuzzer (``tests/unit/test_openapi.py`` runs schemathesis against it),
can hold the API to it. Errors are always ``{"error": reason}`` in JSON.
"""

from __future__ import annotations

#: Canvas kinds of ``POST /canvas/<kind>`` (:func:`fleet.canvas.build`).
CANVAS_KINDS = ("chain", "group", "chord", "map", "starmap", "chunks")

_ERROR = {"$ref": "#/components/schemas/Error"}


def _answer(description: str, schema: dict | None = None) -> dict:
    """One response object: JSON with ``schema`` (the error shape when None)."""
    return {"description": description, "content": {"application/json": {"schema": schema or _ERROR}}}


def _errors(*statuses: int) -> dict:
    """The error responses of a route, by status."""
    reasons = {
        401: "no valid token: send Authorization: Bearer <token>",
        400: "malformed request: bad JSON, nesting too deep, wrong types or arguments",
        404: "unknown task, canvas kind or group",
        405: "method not allowed on this route",
        413: "request body above the producer's limit (fleet_app_api_max_body_bytes)",
        503: "no broker accepted the task, or the result backend is unavailable",
    }
    return {str(status): _answer(reasons[status]) for status in statuses}


def document(task_names: list[str]) -> dict:
    """The OpenAPI 3.0.3 document of the producer API.

    Args:
        task_names: Public names of the tasks ``POST /tasks/<name>`` takes, sorted.

    Returns:
        The document as a JSON-serialisable dict.
    """
    step = {
        "type": "object",
        "properties": {
            "task": {"type": "string", "enum": task_names},
            "args": {"type": "array", "items": {}},
            "kwargs": {"type": "object"},
        },
        "required": ["task"],
        "additionalProperties": False,
    }
    accepted = {
        "type": "object",
        "properties": {
            "task_id": {"type": "string"},
            "queue": {"type": "string"},
            "request_id": {"type": "string"},
        },
        "required": ["task_id", "queue", "request_id"],
    }
    canvas_accepted = {
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": list(CANVAS_KINDS)},
            "request_id": {"type": "string"},
            "task_id": {"type": "string"},
            "group_id": {"type": "string"},
            "task_ids": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["kind", "request_id"],
    }
    state = {
        "type": "object",
        "properties": {
            "task_id": {"type": "string"},
            "state": {"type": "string"},
            "result": {},
            "error": {"type": "string"},
        },
        "required": ["task_id", "state"],
    }
    uuid_param = {"type": "string", "format": "uuid"}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "celery-fleet producer API",
            "version": "1",
            "description": "Publishes Celery tasks and canvases; reads their results (fleet.web).",
        },
        "paths": {
            # One path for both: Flask's /tasks/<name> (POST) and /tasks/<task_id> (GET) are the
            # same template, which OpenAPI allows once.
            "/tasks/{task}": {
                "post": {
                    "summary": "Publish one task",
                    "parameters": [
                        {
                            "name": "task",
                            "in": "path",
                            "required": True,
                            "description": "the task's public name",
                            "schema": {"type": "string", "enum": task_names},
                        }
                    ],
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "args": {"type": "array", "items": {}},
                                        "kwargs": {"type": "object"},
                                        "link": step,
                                        "link_error": {"type": "boolean"},
                                    },
                                    "additionalProperties": False,
                                }
                            }
                        },
                    },
                    "responses": {"202": _answer("published", accepted), **_errors(400, 401, 404, 413, 503)},
                },
                "get": {
                    "summary": "A task's state, with its result or error",
                    "parameters": [
                        {
                            "name": "task",
                            "in": "path",
                            "required": True,
                            "description": "the task's id",
                            "schema": uuid_param,
                        }
                    ],
                    "responses": {"200": _answer("the task's state", state), **_errors(400, 401, 503)},
                },
            },
            "/canvas/{kind}": {
                "parameters": [
                    {
                        "name": "kind",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": list(CANVAS_KINDS)},
                    }
                ],
                "post": {
                    "summary": "Publish a chain, group, chord, map, starmap or chunks (bodies: fleet.canvas)",
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "responses": {"202": _answer("published", canvas_accepted), **_errors(400, 401, 404, 413, 503)},
                },
            },
            "/groups/{group_id}": {
                "parameters": [{"name": "group_id", "in": "path", "required": True, "schema": uuid_param}],
                "get": {
                    "summary": "How many of a group's tasks finished, and their results",
                    "responses": {
                        "200": _answer(
                            "the group's progress",
                            {
                                "type": "object",
                                "properties": {
                                    "group_id": {"type": "string"},
                                    "total": {"type": "integer"},
                                    "completed": {"type": "integer"},
                                    "results": {"type": "array", "items": state},
                                },
                                "required": ["group_id", "total", "completed", "results"],
                            },
                        ),
                        **_errors(400, 401, 404, 503),
                    },
                },
            },
            "/healthz": {
                "get": {
                    "summary": "Whether the broker and the result backend answer",
                    "security": [],
                    "responses": {
                        "200": _answer("both answer", {"type": "object", "required": ["status"]}),
                        "503": _answer("one is down; the body names it", {"type": "object", "required": ["status"]}),
                    },
                },
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": _answer("the OpenAPI document", {"type": "object"})},
                },
            },
        },
        # Every route needs a client's token but the two that say "security": [].
        "security": [{"token": []}],
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}},
                    "required": ["error"],
                }
            },
        },
    }
