"""Entry point for ``celery -A fleet.worker worker``: the worker side of the shared config."""

from celery.signals import after_setup_logger, after_setup_task_logger, worker_ready

from fleet import correlation
from fleet.celery_app import make_celery
from fleet.celeryconfig import declare_dead_letter_queue
from fleet.errors import init_error_reporting
from fleet.settings import load_settings

settings = load_settings()
init_error_reporting(settings, "worker")
app = make_celery(settings)
app.set_default()


@worker_ready.connect
def _declare_dead_letter_queue(sender, **_kwargs) -> None:
    """Declare the dead-letter queue once the worker has connected (see fleet.celeryconfig)."""
    with sender.app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=5)
        declare_dead_letter_queue(connection)


@after_setup_logger.connect
@after_setup_task_logger.connect
def _add_request_id_to_logs(logger, **_kwargs) -> None:
    """Give every worker log record the correlation id (see fleet.correlation)."""
    correlation.install_log_filter(logger)
