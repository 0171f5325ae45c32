"""Celery canvas from JSON: the request bodies of ``POST /canvas/<kind>`` turned into signatures.

Kinds and their bodies (task names are the API's public names, see :data:`fleet.web.API_TASKS`)::

    chain    {"steps": [STEP, ...]}                     each result feeds the next step
    group    {"tasks": [STEP, ...]}                     run in parallel, results as a list
    chord    {"header": [STEP, ...], "body": STEP}      body gets the list of header results
    map      {"task": NAME, "items": [ARG, ...]}        one task over every item, in one message
    starmap  {"task": NAME, "items": [[ARG, ...], ...]} each item spread as positional arguments
    chunks   {"task": NAME, "items": [[ARG, ...], ...], "size": N}  starmap split into N-item tasks

    STEP = {"task": NAME, "args": [...], "kwargs": {...}}   (args/kwargs optional)

Each builder raises :class:`CanvasError` (the API answers 400 with its text) on a malformed body,
before anything is sent.
"""

from __future__ import annotations

from celery import Celery, chain, chord, group
from celery.canvas import Signature

#: Most tasks one canvas request may create (a bound on what an HTTP request can enqueue).
MAX_TASKS = 100


class CanvasError(ValueError):
    """The canvas body is malformed; the message says what is wrong."""


def step_signature(app: Celery, names: dict[str, str], spec, where: str) -> Signature:
    """One ``STEP`` object as a signature (also used for ``link`` callbacks).

    Raises:
        CanvasError: not an object, unknown fields or task, wrong argument types.
    """
    if not isinstance(spec, dict):
        raise CanvasError(f"{where} must be an object with 'task', 'args', 'kwargs'")
    unknown = set(spec) - {"task", "args", "kwargs"}
    if unknown:
        raise CanvasError(f"{where}: unknown fields {sorted(unknown)}")
    name = spec.get("task")
    if name not in names:
        raise CanvasError(f"{where}: unknown task {name!r}; known: {sorted(names)}")
    args, kwargs = spec.get("args", []), spec.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise CanvasError(f"{where}: 'args' must be an array and 'kwargs' an object")
    return app.signature(names[name], args=args, kwargs=kwargs)


def _steps(app: Celery, names: dict[str, str], specs, field: str) -> list[Signature]:
    if not isinstance(specs, list) or not specs:
        raise CanvasError(f"'{field}' must be a non-empty array")
    if len(specs) > MAX_TASKS:
        raise CanvasError(f"'{field}' has {len(specs)} tasks; at most {MAX_TASKS}")
    return [step_signature(app, names, spec, f"{field}[{i}]") for i, spec in enumerate(specs)]


def _items(body: dict) -> list:
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise CanvasError("'items' must be a non-empty array")
    if len(items) > 10 * MAX_TASKS:
        raise CanvasError(f"'items' has {len(items)} entries; at most {10 * MAX_TASKS}")
    return items


def build(app: Celery, names: dict[str, str], kind: str, body: dict) -> Signature:
    """Build the canvas of ``kind`` from a request ``body``.

    Args:
        app: The Celery app whose signatures to build (the producer's).
        names: Public task name -> registered Celery task name (the API's allow-list).
        kind: One of ``chain``, ``group``, ``chord``, ``map``, ``starmap``, ``chunks``.
        body: The decoded JSON object of the request.

    Returns:
        A signature ready for ``apply_async()``; for a group, a :class:`celery.group` whose result
        is a ``GroupResult`` (save it to read it back by id).

    Raises:
        CanvasError: unknown kind, unknown fields or tasks, wrong types, too many tasks.
    """
    if not isinstance(body, dict):
        raise CanvasError("body must be a JSON object")
    allowed = {
        "chain": {"steps"},
        "group": {"tasks"},
        "chord": {"header", "body"},
        "map": {"task", "items"},
        "starmap": {"task", "items"},
        "chunks": {"task", "items", "size"},
    }
    if kind not in allowed:
        raise CanvasError(f"unknown canvas {kind!r}; known: {sorted(allowed)}")
    unknown = set(body) - allowed[kind]
    if unknown:
        raise CanvasError(f"unknown fields: {sorted(unknown)}")
    if kind == "chain":
        return chain(*_steps(app, names, body.get("steps"), "steps"))
    if kind == "group":
        return group(*_steps(app, names, body.get("tasks"), "tasks"))
    if kind == "chord":
        header = _steps(app, names, body.get("header"), "header")
        return chord(header, step_signature(app, names, body.get("body"), "body"))
    task = step_signature(app, names, {"task": body.get("task")}, "task")
    items = _items(body)
    if kind == "map":
        return app.tasks[task.task].map(items)
    if not all(isinstance(item, list) for item in items):
        raise CanvasError("every item must be an array of positional arguments")
    if kind == "starmap":
        return app.tasks[task.task].starmap(items)
    size = body.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= len(items):
        raise CanvasError(f"'size' must be an integer from 1 to {len(items)}")
    if -(-len(items) // size) > MAX_TASKS:
        raise CanvasError(f"{len(items)} items in chunks of {size} make more than {MAX_TASKS} tasks")
    return app.tasks[task.task].chunks(items, size).group()
