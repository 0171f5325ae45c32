"""Construction of the Celery application shared by the producer and the workers."""

from __future__ import annotations

from celery import Celery, Task

from fleet import correlation  # noqa: F401  (connects the correlation id's signal handlers)
from fleet.celeryconfig import celery_config
from fleet.settings import Settings


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
    celery.Task = FlaskTask
    celery.set_default()
    import fleet.tasks  # noqa: F401  (registers the shared tasks on this app)

    flask_app.extensions["celery"] = celery
    return celery
