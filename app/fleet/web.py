"""The producer: a Flask JSON API that publishes tasks and reads their results.

Routes:
    ``POST /tasks/<name>``  body ``{"args": [...], "kwargs": {...}}`` (both optional) -> 202
        ``{"task_id", "queue"}``; 404 for an unknown task; 400 with ``{"error"}`` for malformed
        JSON, wrong types or arguments the task does not take; 503 when no broker takes it.
    ``GET /tasks/<task_id>`` -> 200 ``{"task_id", "state", "result"}`` on success,
        ``{"task_id", "state", "error"}`` on failure, ``{"task_id", "state"}`` otherwise.
    ``GET /healthz`` -> 200 when the broker and the result backend answer, else 503; the body
        says which one failed.

Served by Gunicorn: ``gunicorn 'fleet.web:create_app()'``.
"""

from __future__ import annotations

import inspect
import uuid

from flask import Flask, jsonify, request
from kombu.exceptions import OperationalError

from fleet.celery_app import celery_init_app
from fleet.celeryconfig import TASK_ROUTES
from fleet.settings import Settings, load_settings

#: Public name in the API -> registered Celery task name.
API_TASKS: dict[str, str] = {
    "ping": "fleet.tasks.ping",
    "send_email": "fleet.tasks.send_email",
    "render_report": "fleet.tasks.render_report",
    "always_fail": "fleet.tasks.always_fail",
}


def _error(status: int, reason: str):
    return jsonify({"error": reason}), status


def create_app(settings: Settings | None = None) -> Flask:
    """Flask app factory.

    Args:
        settings: Connection settings; read with :func:`fleet.settings.load_settings` when None.

    Returns:
        The Flask app, with the Celery app in ``app.extensions["celery"]``.

    Raises:
        fleet.settings.SettingsError: the configuration is incomplete (raised at start-up, so
            Gunicorn refuses to boot rather than serving errors).
    """
    app = Flask("fleet")
    celery = celery_init_app(app, settings or load_settings())

    @app.post("/tasks/<name>")
    def submit(name: str):
        if name not in API_TASKS:
            return _error(404, f"unknown task {name!r}; known: {sorted(API_TASKS)}")
        body = request.get_json(silent=True) if request.data else {}
        if body is None:
            return _error(400, "body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "body must be a JSON object")
        unknown = set(body) - {"args", "kwargs"}
        if unknown:
            return _error(400, f"unknown fields: {sorted(unknown)}")
        args = body.get("args", [])
        kwargs = body.get("kwargs", {})
        if not isinstance(args, list):
            return _error(400, "'args' must be a JSON array")
        if not isinstance(kwargs, dict):
            return _error(400, "'kwargs' must be a JSON object")
        task = celery.tasks[API_TASKS[name]]
        try:
            inspect.signature(task.run).bind(*args, **kwargs)
        except TypeError as exc:
            return _error(400, f"arguments do not match task {name!r}: {exc}")
        try:
            result = task.apply_async(args=args, kwargs=kwargs)
        except OperationalError as exc:
            return _error(503, f"no broker accepted the task: {exc}")
        queue = TASK_ROUTES.get(API_TASKS[name], {}).get("queue", "default")
        return jsonify({"task_id": result.id, "queue": queue}), 202

    @app.get("/tasks/<task_id>")
    def status(task_id: str):
        try:
            uuid.UUID(task_id)
        except ValueError:
            return _error(400, "task id must be a UUID")
        result = celery.AsyncResult(task_id)
        try:
            state = result.state
            body = {"task_id": task_id, "state": state}
            if state == "SUCCESS":
                body["result"] = result.result
            elif state == "FAILURE":
                body["error"] = f"{type(result.result).__name__}: {result.result}"
        except Exception as exc:  # noqa: BLE001 - any backend failure is the backend's 503
            return _error(503, f"result backend unavailable: {exc}")
        return jsonify(body)

    @app.get("/healthz")
    def healthz():
        checks = {}
        try:
            with celery.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=3)
                checks["broker"] = "ok"
        except Exception as exc:  # noqa: BLE001 - the reason is reported, not raised
            checks["broker"] = f"down: {exc}"
        try:
            celery.backend.client.ping()
            checks["result_backend"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["result_backend"] = f"down: {exc}"
        healthy = all(v == "ok" for v in checks.values())
        return jsonify({"status": "ok" if healthy else "degraded", **checks}), 200 if healthy else 503

    return app
