"""Construction of the Celery application shared by the producer and the workers."""

from __future__ import annotations

from celery import Celery, Task
from celery.backends.redis import RedisBackend, SentinelBackend

from fleet import correlation  # noqa: F401  (connects the correlation id's signal handlers)
from fleet.celeryconfig import celery_config
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
    if url.startswith("sentinel://"):
        return f"{__name__}:PublishOnlySentinelBackend+{url}"
    if url.startswith(("redis://", "rediss://")):
        return f"{__name__}:PublishOnlyRedisBackend+{url}"
    return url


def make_celery(settings: Settings, main: str = "fleet") -> Celery:
    """Create a Celery app configured from ``settings``.

    Args:
        settings: Connection settings (see :func:`fleet.settings.load_settings`).
        main: Name of the main module, used as prefix for auto-generated task names.

    Returns:
        A configured :class:`celery.Celery`; ``fleet.tasks`` is imported so its shared tasks bind
        to it, and ``fleet.drill_tasks`` too where ``settings.drills`` is on.
    """
    app = Celery(main)
    app.conf.update(celery_config(settings))
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
