"""Construction of the Celery application shared by the producer and the workers."""

from __future__ import annotations

from celery import Celery, Task
from celery.backends.redis import RedisBackend, SentinelBackend

from fleet import correlation  # noqa: F401  (connects the correlation id's signal handlers)
from fleet.celeryconfig import celery_config, worker_command_retry
from fleet.settings import Settings


class _NoResultSubscription:
    """Result backend behaviour for a process that publishes tasks and never waits on them.

    Celery's Redis backends subscribe to each task's result channel before publishing it
    (``on_task_call``), so that a later ``AsyncResult.get()`` in the same process hears the
    result: a Redis round trip per task, and a Redis outage turns into a failed publish. The API
    never calls ``get()``: its clients read results with ``GET /tasks/<id>``, which reads the
    stored result. A ``get()`` would still work: it subscribes when it starts waiting, and reads
    the stored result first (Celery's ``on_wait_for_pending``).
    """

    def on_task_call(self, producer, task_id):
        """Subscribe to nothing (Celery's hook, called before each publish)."""
        return None


class PublishOnlyRedisBackend(_NoResultSubscription, RedisBackend):
    """Celery's ``redis://`` / ``rediss://`` backend without the per-task result subscription."""


class PublishOnlySentinelBackend(_NoResultSubscription, SentinelBackend):
    """Celery's ``sentinel://`` backend without the per-task result subscription."""


class _RetriedCommands:
    """Result backend behaviour for a worker: redis-py retries each command through a failover.

    Celery retries a worker's result store as a whole (``result_backend_always_retry``), but not
    the other commands a task's end sends: the chord counter's script
    (``on_chord_part_return``), its reads and its cleanup. A connection lost in one of them (the
    master killed mid-command) failed the task "outside body", and the chord with it
    (``ChordError``; the backend-kill drill in docs/benchmarks.md). redis-py's own ``Retry`` on
    the connection sends such a command again on a new connection, which with Sentinel asks for
    the master anew. Celery's settings reach none of redis-py's retry options, so the backend
    passes them into its connection parameters (:func:`fleet.celeryconfig.worker_command_retry`).
    Every command Celery's backend sends is safe to send twice: SET/GET/DEL, PUBLISH (a result
    heard twice), and the chord script, which records each task once (its ``.d`` set).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connparams.update(worker_command_retry())


class RetriedRedisBackend(_RetriedCommands, RedisBackend):
    """Celery's ``redis://`` / ``rediss://`` backend with redis-py's retry of each command."""


class RetriedSentinelBackend(_RetriedCommands, SentinelBackend):
    """Celery's ``sentinel://`` backend with redis-py's retry of each command."""


def _backend_class_url(url: str, redis_class: type, sentinel_class: type) -> str:
    """``<module>:<class>+<url>`` for a Redis or Sentinel ``url``; any other ``url`` as it is."""
    if url.startswith("sentinel://"):
        return f"{__name__}:{sentinel_class.__name__}+{url}"
    if url.startswith(("redis://", "rediss://")):
        return f"{__name__}:{redis_class.__name__}+{url}"
    return url


def worker_backend(url: str) -> str:
    """Return the ``result_backend`` setting that selects a worker's backend for ``url``
    (:class:`RetriedRedisBackend` or :class:`RetriedSentinelBackend`), in Celery's
    ``<class>+<url>`` form; any other scheme is returned as it is.

    Args:
        url: The result backend URL (``redis://``, ``rediss://``, ``sentinel://``, ``;``-joined
            for several Sentinels).

    Returns:
        The setting, e.g. ``fleet.celery_app:RetriedSentinelBackend+sentinel://...``.
    """
    return _backend_class_url(url, RetriedRedisBackend, RetriedSentinelBackend)


def publish_only_backend(url: str) -> str:
    """Return the ``result_backend`` setting that selects a publish-only backend for ``url``.

    Uses Celery's ``<class>+<url>`` form of the setting (as in ``db+postgresql://``): the part
    before ``+`` names the backend class, the rest is the URL it gets.

    Args:
        url: The result backend URL (``redis://``, ``rediss://``, ``sentinel://``, ``;``-joined
            for several Sentinels); any other scheme is returned as it is.

    Returns:
        The setting, e.g. ``fleet.celery_app:PublishOnlySentinelBackend+sentinel://...``.
    """
    return _backend_class_url(url, PublishOnlyRedisBackend, PublishOnlySentinelBackend)


def make_celery(settings: Settings, main: str = "fleet") -> Celery:
    """Create a Celery app configured from ``settings``.

    Args:
        settings: Connection settings (see :func:`fleet.settings.load_settings`).
        main: Name of the main module, used as prefix for auto-generated task names.

    Returns:
        A configured :class:`celery.Celery`; ``fleet.tasks`` is imported so its shared tasks bind
        to it, and ``fleet.drill_tasks`` too where ``settings.drills`` is on. A worker's
        (``settings.role == "worker"``) result backend retries each command
        (:func:`worker_backend`).
    """
    app = Celery(main)
    app.conf.update(celery_config(settings))
    if settings.role == "worker":
        app.conf.result_backend = worker_backend(app.conf.result_backend)
    app.conf.imports = ("fleet.tasks", "fleet.drill_tasks") if settings.drills else ("fleet.tasks",)
    return app


def celery_init_app(flask_app, settings: Settings) -> Celery:
    """Bind a Celery app to a Flask app (the pattern of Flask's own Celery example).

    Tasks run inside the Flask app context, and the Celery app is stored in
    ``flask_app.extensions["celery"]``.

    Args:
        flask_app: The :class:`flask.Flask` application.
        settings: Connection settings for the broker and result backend.

    Returns:
        The Celery app, set as default so ``@shared_task`` tasks use it.
    """

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with flask_app.app_context():
                return self.run(*args, **kwargs)

    celery = make_celery(settings, main=flask_app.name)
    # The API publishes and never waits on a result (docs/benchmarks.md, "the per-task result
    # subscription"): no Redis round trip per request, and no publish fails while the result
    # backend fails over.
    celery.conf.result_backend = publish_only_backend(celery.conf.result_backend)
    celery.Task = FlaskTask
    celery.set_default()
    import fleet.tasks  # noqa: F401  (registers the shared tasks on this app)

    flask_app.extensions["celery"] = celery
    return celery
