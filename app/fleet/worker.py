"""Entry point for ``celery -A fleet.worker worker``: the worker side of the shared config."""

from fleet.celery_app import make_celery
from fleet.settings import load_settings

app = make_celery(load_settings())
app.set_default()
