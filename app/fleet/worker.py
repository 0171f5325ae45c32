"""Entry point for ``celery -A fleet.worker worker``: the worker side of the shared config."""

from celery.signals import worker_ready

from fleet.celery_app import make_celery
from fleet.celeryconfig import declare_dead_letter_queue
from fleet.settings import load_settings

app = make_celery(load_settings())
app.set_default()


@worker_ready.connect
def _declare_dead_letter_queue(sender, **_kwargs) -> None:
    """Declare the dead-letter queue once the worker has connected (see fleet.celeryconfig)."""
    with sender.app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=5)
        declare_dead_letter_queue(connection)
