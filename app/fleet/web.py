"""The producer: a Flask JSON API that publishes tasks and reads their results.

Routes:
    ``POST /tasks/<name>``  body ``{"args": [...], "kwargs": {...}, "link": STEP, "link_error": true}``
        (all optional) -> 202 ``{"task_id", "queue", "request_id"}``; 404 for an unknown task; 400
        with ``{"error"}`` for malformed JSON, wrong types or arguments the task does not take; 503
        when no broker takes it. ``link`` runs STEP (:mod:`fleet.canvas`) with the result;
        ``link_error`` runs ``record_failure``, which logs the failure and its traceback.
    ``POST /canvas/<kind>``  kind ``chain``, ``group``, ``chord``, ``map``, ``starmap``, ``chunks``
        (bodies in :mod:`fleet.canvas`) -> 202 ``{"kind", "request_id", "task_id"}``, or
        ``"group_id"`` and ``"task_ids"`` for a group; 404 unknown kind; 400 malformed body.
    ``GET /groups/<group_id>`` -> ``{"group_id", "total", "completed", "results": [...]}``.
    ``GET /tasks/<task_id>`` -> 200 ``{"task_id", "state", "result"}`` on success,
        ``{"task_id", "state", "error"}`` on failure, ``{"task_id", "state"}`` otherwise.
    ``GET /healthz`` -> 200 when the broker and the result backend answer, else 503; the body
        says which one failed.
    ``GET /openapi.json`` -> the API's contract (:mod:`fleet.openapi`), every status listed.

Every route but ``/healthz`` and ``/openapi.json`` needs ``Authorization: Bearer <token>``, a token
whose SHA-256 digest is one of ``api_tokens`` (one per client, :mod:`fleet.settings`); without
one the answer is 401 JSON with ``WWW-Authenticate: Bearer``. The client's name is logged.

Every error is answered in JSON, ``{"error": reason}``, whatever raised it: unknown routes (404),
methods (405), a body above ``api_max_body_bytes`` (413, before it is read), a body nested deeper
than ``api_max_json_depth`` (400, before it is parsed), and anything unforeseen (500, logged with
its traceback).

Every response carries ``X-Request-ID``: the request's header when it is a plausible id, else a
new one. The id travels in the headers of each task the request publishes and appears in the
producer's and the worker's log lines (:mod:`fleet.correlation`).

Served by Gunicorn: ``gunicorn 'fleet.web:create_app()'``.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import json
import logging
import re
import sys
import uuid

from celery import Celery
from celery.result import GroupResult
from flask import Blueprint, Flask, current_app, g, jsonify, request
from kombu.exceptions import OperationalError
from werkzeug.exceptions import HTTPException

from fleet import correlation, openapi
from fleet.canvas import CanvasError, build, step_signature
from fleet.celery_app import celery_init_app
from fleet.celeryconfig import TASK_ROUTES
from fleet.errors import init_error_reporting
from fleet.settings import Settings, SettingsError, load_settings

#: Public name in the API -> registered Celery task name.
API_TASKS: dict[str, str] = {
    "ping": "fleet.tasks.ping",
    "send_email": "fleet.tasks.send_email",
    "render_report": "fleet.tasks.render_report",
    "always_fail": "fleet.tasks.always_fail",
    "add": "fleet.tasks.add",
    "total": "fleet.tasks.total",
}


#: Producer log line format; ``request_id`` comes from :class:`fleet.correlation.RequestIdFilter`.
LOG_FORMAT = "[%(asctime)s: %(levelname)s/%(name)s] [%(request_id)s] %(message)s"

log = logging.getLogger("fleet.web")


def _setup_logging() -> None:
    """Log the ``fleet`` loggers to stderr (Gunicorn's, which supervisord keeps) with the id."""
    logger = logging.getLogger("fleet")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    correlation.install_log_filter(logger)


def _describe(result) -> dict:
    """``{"task_id", "state"}`` plus ``result`` on success or ``error`` on failure.

    Raises:
        Whatever the result backend raises when it cannot be read.
    """
    state = result.state
    body = {"task_id": result.id, "state": state}
    if state == "SUCCESS":
        body["result"] = result.result
    elif state == "FAILURE":
        body["error"] = f"{type(result.result).__name__}: {result.result}"
    return body


def _is_uuid(value: str) -> bool:
    """Whether ``value`` is a UUID (Celery's task and group ids are)."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _error(status: int, reason: str):
    return jsonify({"error": reason}), status


#: A JSON string literal (escapes included), removed before nesting is counted.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(data: bytes) -> int:
    """How deeply arrays and objects nest in a JSON text, without parsing it.

    Args:
        data: The text as bytes (UTF-8), valid JSON or not.

    Returns:
        The greatest number of ``[``/``{`` open at once outside string literals (0 for a scalar).
        Linear in ``len(data)``: it runs before the parser, which recurses once per level and
        would otherwise meet a 100,000-deep body with a ``RecursionError``.
    """
    brackets = _JSON_STRING.sub(b"", data).translate(None, delete=bytes(c for c in range(256) if c not in b"[]{}"))
    depth = deepest = 0
    for char in brackets:
        depth += 1 if char in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _json_body() -> tuple[object, tuple | None]:
    """The request's JSON body (``{}`` when empty), or ``(None, error response)``.

    The body's size was checked by Flask (``MAX_CONTENT_LENGTH``, 413 above it); its nesting is
    checked here against ``api_max_json_depth`` before the parser sees it.
    """
    data = request.get_data(cache=True)
    if not data:
        return {}, None
    limit = current_app.config["FLEET_MAX_JSON_DEPTH"]
    if json_depth(data) > limit:
        return None, _error(400, f"body nests arrays and objects deeper than {limit} levels")
    try:
        return json.loads(data), None
    except (ValueError, RecursionError):
        return None, _error(400, "body is not valid JSON")


#: The API's routes and its request-id hooks; :func:`create_app` registers them.
api = Blueprint("api", __name__)


def _celery() -> Celery:
    """The Celery app of the Flask app serving this request (:func:`create_app` binds it)."""
    return current_app.extensions["celery"]


@api.before_app_request
def _bind_request_id():
    """Take the request's id from ``X-Request-ID`` (or make one) and bind it for the logs."""
    g.request_id = correlation.from_http(request.headers.get(correlation.HTTP_HEADER))
    g.request_id_token = correlation.bind(g.request_id)


#: Endpoints any caller may read: load balancers and supervisors probe ``/healthz``, and a client
#: reads the contract to learn how to authenticate.
OPEN_ENDPOINTS = frozenset({"api.healthz", "api.openapi_document"})


def token_digest(token: str) -> str:
    """The form a token is stored in: ``"sha256:<64 hex digits>"`` of its UTF-8 bytes.

    The kit's tokens are 40 random letters and digits (about 238 bits), so an unsalted digest
    cannot be reversed by search; ``fleet.toml`` therefore never holds a usable token.
    """
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def _client_of(authorization: str | None, tokens: dict[str, str]) -> str | None:
    """The client name whose token ``authorization`` (``"Bearer <token>"``) carries, else None.

    Every stored digest is compared in constant time, so the answer's timing does not tell which
    client's digest a guess came close to.
    """
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    digest = token_digest(token.strip())
    found = None
    for client, stored in tokens.items():
        if hmac.compare_digest(digest, stored):
            found = client
    return found


@api.before_app_request
def _authenticate():
    """Refuse, with 401 JSON, a request to a protected route that carries no known token."""
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    g.api_client = _client_of(request.headers.get("Authorization"), current_app.config["FLEET_API_TOKENS"])
    if g.api_client is None:
        response, status = _error(401, "a valid token is required: Authorization: Bearer <token>")
        response.headers["WWW-Authenticate"] = 'Bearer realm="fleet"'
        return response, status
    return None


@api.after_app_request
def _echo_request_id(response):
    """Answer with the request's id in ``X-Request-ID``."""
    response.headers[correlation.HTTP_HEADER] = g.get("request_id", "")
    return response


@api.teardown_app_request
def _unbind_request_id(_exc):
    """Unbind the request's id once the request is done."""
    token = g.pop("request_id_token", None)
    if token is not None:
        correlation.unbind(token)


@api.post("/tasks/<name>")
def submit(name: str):
    """``POST /tasks/<name>``: publish one task (see the module docstring for the body and answers)."""
    if name not in API_TASKS:
        return _error(404, f"unknown task {name!r}; known: {sorted(API_TASKS)}")
    body, refusal = _json_body()
    if refusal:
        return refusal
    if not isinstance(body, dict):
        return _error(400, "body must be a JSON object")
    unknown = set(body) - {"args", "kwargs", "link", "link_error"}
    if unknown:
        return _error(400, f"unknown fields: {sorted(unknown)}")
    args = body.get("args", [])
    kwargs = body.get("kwargs", {})
    if not isinstance(args, list):
        return _error(400, "'args' must be a JSON array")
    if not isinstance(kwargs, dict):
        return _error(400, "'kwargs' must be a JSON object")
    task = _celery().tasks[API_TASKS[name]]
    try:
        inspect.signature(task.run).bind(*args, **kwargs)
    except TypeError as exc:
        return _error(400, f"arguments do not match task {name!r}: {exc}")
    options = {}
    try:
        if "link" in body:
            options["link"] = step_signature(_celery(), API_TASKS, body["link"], "link")
    except CanvasError as exc:
        return _error(400, str(exc))
    if body.get("link_error", False) not in (True, False):
        return _error(400, "'link_error' must be true or false")
    if body.get("link_error"):
        options["link_error"] = _celery().signature("fleet.tasks.record_failure")
    try:
        result = task.apply_async(args=args, kwargs=kwargs, **options)
    except OperationalError as exc:
        return _error(503, f"no broker accepted the task: {exc}")
    queue = TASK_ROUTES.get(API_TASKS[name], {}).get("queue", "default")
    log.info("published %s as task %s to queue %s for %s", API_TASKS[name], result.id, queue, g.api_client)
    return jsonify({"task_id": result.id, "queue": queue, "request_id": g.request_id}), 202


@api.post("/canvas/<kind>")
def submit_canvas(kind: str):
    """``POST /canvas/<kind>``: publish a chain, group, chord, map, starmap or chunks."""
    body, refusal = _json_body()
    if refusal:
        return refusal
    try:
        signature = build(_celery(), API_TASKS, kind, body)
    except CanvasError as exc:
        return _error(404 if str(exc).startswith("unknown canvas") else 400, str(exc))
    try:
        result = signature.apply_async()
    except OperationalError as exc:
        return _error(503, f"no broker accepted the canvas: {exc}")
    reply = {"kind": kind, "request_id": g.request_id}
    if isinstance(result, GroupResult):
        result.save()
        reply.update(group_id=result.id, task_ids=[r.id for r in result.results])
    else:
        reply["task_id"] = result.id
    log.info("published canvas %s as %s for %s", kind, reply.get("group_id") or reply.get("task_id"), g.api_client)
    return jsonify(reply), 202


@api.get("/groups/<group_id>")
def group_status(group_id: str):
    """``GET /groups/<group_id>``: how many of a group's tasks finished, and their results."""
    if not _is_uuid(group_id):
        return _error(400, "group id must be a UUID")
    try:
        result = GroupResult.restore(group_id, app=_celery())
        if result is None:
            return _error(404, f"no group {group_id} (unknown or expired)")
        members = [_describe(r) for r in result.results]
    except Exception as exc:  # noqa: BLE001 - any backend failure is the backend's 503
        return _error(503, f"result backend unavailable: {exc}")
    done = sum(m["state"] in ("SUCCESS", "FAILURE") for m in members)
    return jsonify({"group_id": group_id, "total": len(members), "completed": done, "results": members})


@api.get("/tasks/<task_id>")
def status(task_id: str):
    """``GET /tasks/<task_id>``: a task's state, with its result or error."""
    if not _is_uuid(task_id):
        return _error(400, "task id must be a UUID")
    try:
        body = _describe(_celery().AsyncResult(task_id))
    except Exception as exc:  # noqa: BLE001 - any backend failure is the backend's 503
        return _error(503, f"result backend unavailable: {exc}")
    return jsonify(body)


@api.get("/openapi.json")
def openapi_document():
    """``GET /openapi.json``: the OpenAPI 3.0 document of this API (:func:`fleet.openapi.document`)."""
    return jsonify(openapi.document(sorted(API_TASKS)))


@api.get("/healthz")
def healthz():
    """``GET /healthz``: 200 when the broker and the result backend answer, else 503 naming the one down.

    The route is open to any caller, so a failure is answered as ``"down: <exception class>"``
    only (never the message, which names addresses and ports); the message is logged.
    """
    checks = {}
    try:
        with _celery().connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
            checks["broker"] = "ok"
    except Exception as exc:  # noqa: BLE001 - the reason is reported, not raised
        log.warning("health check: broker down: %s", exc)
        checks["broker"] = f"down: {type(exc).__name__}"
    try:
        _celery().backend.client.ping()
        checks["result_backend"] = "ok"
    except Exception as exc:  # noqa: BLE001
        log.warning("health check: result backend down: %s", exc)
        checks["result_backend"] = f"down: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return jsonify({"status": "ok" if healthy else "degraded", **checks}), 200 if healthy else 503


@api.app_errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    """Any HTTP error Flask or Werkzeug raises (404 route, 405 method, 413 body...) as JSON."""
    response = jsonify({"error": f"{exc.name}: {exc.description}"})
    response.status_code = exc.code or 500
    if exc.code == 405 and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


@api.app_errorhandler(Exception)
def _unforeseen_error(exc: Exception):
    """Anything else: logged with its traceback, answered 500 in JSON without the details."""
    log.exception("unhandled error: %s", exc)
    return _error(500, "internal error; the producer's log has the details (X-Request-ID)")


def create_app(settings: Settings | None = None) -> Flask:
    """Flask app factory: the Celery app, error reporting, logging, and the :data:`api` routes.

    Args:
        settings: Connection settings; read with :func:`fleet.settings.load_settings` when None.

    Returns:
        The Flask app, with the Celery app in ``app.extensions["celery"]``.

    Raises:
        fleet.settings.SettingsError: the configuration is incomplete, or holds no API token
            (raised at start-up, so Gunicorn refuses to boot rather than serving errors or
            refusing every client).
    """
    app = Flask("fleet", static_folder=None)  # no static files: every route is the API
    settings = settings or load_settings()
    if not settings.api_tokens:
        raise SettingsError("api_tokens is empty: the producer API would refuse every client")
    app.config["FLEET_API_TOKENS"] = dict(settings.api_tokens)
    init_error_reporting(settings, "producer")
    app.config["MAX_CONTENT_LENGTH"] = settings.api_max_body_bytes
    app.config["FLEET_MAX_JSON_DEPTH"] = settings.api_max_json_depth
    celery_init_app(app, settings)
    _setup_logging()
    app.register_blueprint(api)
    return app
