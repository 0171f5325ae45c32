"""celery-fleet's application: a Flask producer and Celery tasks routed to queues by host."""

__version__ = "0.1.0"
