"""The one Celery configuration that the producer and every worker import.

Queues, routes and queue type are defined here only, so the two sides can never disagree about a
queue. Connection details come from :mod:`fleet.settings` (written by Ansible); nothing here holds
an address or a secret.
"""

from __future__ import annotations

import logging
import ssl
import time
import urllib.parse

from amqp.exceptions import MessageNacked
from kombu import Exchange, Queue
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from fleet.settings import Settings

logger = logging.getLogger(__name__)

#: Task queues, in the order the docs and the demo list them. The ``celery_worker`` role binds
#: each worker program to some of them with ``-Q``; RabbitMQ users' permissions are built from
#: the same names (``fleet_queues`` in inventory must equal this tuple; a unit test checks).
QUEUES: tuple[str, ...] = ("default", "email", "reports")

#: Exchange every task queue is bound to, routing key = queue name. Topic rather than direct:
#: Celery's native delayed delivery (used with quorum queues for countdown/ETA) cannot forward
#: through direct exchanges.
TASK_EXCHANGE = Exchange("fleet", type="topic", durable=True)

#: Where RabbitMQ puts a task that was delivered more often than the ``delivery-limit`` policy
#: allows (the broker side is the ``fleet-task-queues`` policy in inventory/stack/group_vars/
#: brokers.yml). Fanout: dead-lettered messages keep their original routing key (the queue they
#: came from), and all of them go to one queue. Declared by every worker at start-up
#: (:func:`declare_dead_letter_queue`); until it exists, RabbitMQ's at-least-once dead-lettering
#: keeps the message in its task queue, so nothing is dropped.
DEAD_LETTER_EXCHANGE = Exchange("fleet.dead-letter", type="fanout", durable=True)

#: The one queue of tasks given up on: a quorum queue, never consumed by a worker. Operators read
#: it with ``python -m fleet.dead_letter`` (docs/operations.md).
DEAD_LETTER_QUEUE = Queue(
    "dead-letter",
    DEAD_LETTER_EXCHANGE,
    durable=True,
    queue_arguments={"x-queue-type": "quorum"},
)

#: Task name -> queue. A task missing here goes to ``default``.
TASK_ROUTES: dict[str, dict[str, str]] = {
    "fleet.tasks.ping": {"queue": "default"},
    "fleet.tasks.always_fail": {"queue": "default"},
    "fleet.drill_tasks.crash_worker_process": {"queue": "default"},
    "fleet.tasks.add": {"queue": "default"},
    "fleet.tasks.total": {"queue": "default"},
    "fleet.tasks.record_failure": {"queue": "default"},
    "fleet.tasks.send_email": {"queue": "email"},
    "fleet.tasks.render_report": {"queue": "reports"},
}


#: Seconds a producer waits before it publishes again a task the broker refused (basic.nack).
#: A quorum queue whose leader just died nacks publishes until a new leader takes them; in a CI
#: run of the broker-kill drill two publishes were nacked on all 5 retries, spent in milliseconds.
#: With :data:`PUBLISH_MAX_RETRIES` this rides ~10 s of refusals; a leader election after a
#: node is killed takes well under that (docs/benchmarks.md, broker-kill).
NACK_RETRY_WAIT = 1.0

#: Publish retries before a task is reported as not sent (Celery's ``task_publish_retry_policy``).
PUBLISH_MAX_RETRIES = 10


def wait_after_nack(exc: BaseException, interval: float) -> None:
    """Retry-policy errback: wait :data:`NACK_RETRY_WAIT` seconds after a publish was nacked.

    kombu's ``Connection.ensure`` (which Celery's publish retry uses) treats a nack as a
    connection error: it reconnects and publishes again, waiting only when the reconnect fails.
    The connection is fine after a nack, so without this the retries would be spent at once,
    while the queue is still without a leader. kombu calls this with ``(exc, 0)`` after a failed
    publish and with ``(exc, seconds it will sleep)`` after a failed connect; only a nack waits
    here, a failed connect already waits as the policy says.

    Args:
        exc: The error of the failed publish or connect.
        interval: Seconds kombu itself will wait next (0 after a failed publish).
    """
    if isinstance(exc, MessageNacked):
        logger.warning("publish refused by the broker (nack); publishing again in %.1f s", NACK_RETRY_WAIT)
        time.sleep(NACK_RETRY_WAIT)


def task_queues() -> list[Queue]:
    """Build the kombu queue declarations.

    Returns:
        One durable RabbitMQ *quorum* queue (``x-queue-type: quorum``) per name in
        :data:`QUEUES`, bound to :data:`TASK_EXCHANGE` with the queue name as routing key.
    """
    return [
        Queue(
            name,
            TASK_EXCHANGE,
            routing_key=name,
            durable=True,
            queue_arguments={"x-queue-type": "quorum"},
        )
        for name in QUEUES
    ]


def declare_dead_letter_queue(connection) -> None:
    """Declare :data:`DEAD_LETTER_EXCHANGE`, :data:`DEAD_LETTER_QUEUE` and their binding.

    Idempotent: a no-op when they already exist with the same arguments.

    Args:
        connection: An open :class:`kombu.Connection` to the broker, as a user allowed to
            configure both names (the worker user; see inventory/stack/group_vars/brokers.yml).

    Raises:
        kombu.exceptions.OperationalError: the broker cannot be reached.
        amqp.exceptions.AccessRefused: the user lacks the permissions.
    """
    DEAD_LETTER_QUEUE.bind(connection.default_channel).declare()


#: How long a Redis command (a result read, the producer's per-task subscription, a worker's
#: write) is retried by kombu's retry_over_time before it raises: 0, 0.5, 1, 1, ... s, 16 tries,
#: ~14.5 s in all. That rides out a Sentinel failover (the master is declared down after 5 s,
#: redis_sentinel_down_after_ms, and a replica promoted within ~2 s: the backend-kill drill in
#: docs/benchmarks.md); a backend down for longer gets a 503 from the API after it.
RESULT_RETRY_POLICY = {"max_retries": 16, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
#: A worker's result store as a whole (Celery's result_backend_always_retry): it first reads the
#: stored state without kombu's retry, so this outer loop is what carries it through a failover:
#: 30 tries, each after a full-jitter wait of up to 2 s (base 0.5 s): ~30 s in all.
WORKER_STORE_MAX_RETRIES = 30
#: redis-py's retry of each command a worker's result backend sends (fleet.celery_app's
#: RetriedSentinelBackend), on a connection error or a timeout: (retries, seconds of the first
#: wait, seconds of every later wait). 16 retries after the first try, 0.5 then 1 s apart:
#: ~15.5 s, longer than a Sentinel failover (6-9 s from the master's death, the backend-kill
#: drill in docs/benchmarks.md).
WORKER_COMMAND_RETRY = (16, 0.5, 1.0)


def worker_command_retry() -> dict:
    """Return redis-py connection parameters that retry each command through a failover.

    Returns:
        ``{"retry": redis.retry.Retry, "retry_on_error": [ConnectionError, TimeoutError]}`` for a
        Redis connection's keyword arguments: :data:`WORKER_COMMAND_RETRY` tries, waits from
        redis-py's ``ExponentialBackoff`` (0.5 s, then 1 s; seconds). redis-py deep-copies the
        ``Retry`` into each connection.
    """
    retries, first_wait, cap = WORKER_COMMAND_RETRY
    # ExponentialBackoff waits min(cap, base * 2 ** failures), failures counted from 1.
    retry = Retry(ExponentialBackoff(cap=cap, base=first_wait / 2), retries)
    return {"retry": retry, "retry_on_error": [RedisConnectionError, RedisTimeoutError]}


def sentinel_transport_options(settings: Settings) -> dict:
    """Return the ``result_backend_transport_options`` that Celery's Sentinel backend needs.

    ``master_name`` is the Sentinels' name for the master (``settings.result_backend_master``);
    ``sentinel_kwargs`` are redis-py's settings for the connections to the Sentinels themselves,
    which take none of the backend's: the password (the servers', shared by the Sentinels: the
    first URL's), the same 5 s timeouts, and TLS with this host's certificate when
    ``settings.result_backend_tls``.

    Args:
        settings: Settings whose ``result_backend`` holds ``sentinel://`` URLs.

    Returns:
        ``{"master_name": str, "sentinel_kwargs": dict}``.
    """
    first = urllib.parse.urlsplit(settings.result_backend.split(";")[0])
    sentinel_kwargs: dict = {"socket_timeout": 5, "socket_connect_timeout": 5}
    if first.password:
        sentinel_kwargs["password"] = urllib.parse.unquote(first.password)
    if settings.result_backend_tls:
        sentinel_kwargs.update(
            ssl=True,
            ssl_cert_reqs=ssl.CERT_REQUIRED,
            ssl_ca_certs=settings.tls_ca_file,
            ssl_certfile=settings.tls_cert_file,
            ssl_keyfile=settings.tls_key_file,
        )
    return {"master_name": settings.result_backend_master, "sentinel_kwargs": sentinel_kwargs}


def celery_config(settings: Settings) -> dict:
    """Return the Celery settings mapping for ``app.conf.update``.

    Args:
        settings: Connection settings; ``settings.role`` selects producer-only options.

    Returns:
        A dict of Celery setting names (lower-case, Celery 5 style) to values.
    """
    conf = {
        # Every broker node, in failover order; kombu moves to the next URL when one fails.
        "broker_url": list(settings.broker_urls),
        "broker_failover_strategy": "round-robin",
        # A dead peer is noticed after ~2 heartbeats instead of the kernel's TCP timeout.
        "broker_heartbeat": settings.broker_heartbeat,
        # Keep reconnecting for as long as it takes; a broker outage must not end a worker.
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "result_backend": settings.result_backend,
        # Results are read back by the API and the demo, then left to expire (seconds).
        "result_expires": 86400,
        "result_extended": True,
        # Fail fast (seconds) when Redis is away instead of redis-py's default of waiting on.
        "redis_socket_timeout": 5,
        "redis_socket_connect_timeout": 5,
        # Ride out a result backend failover (6-9 s), then give up (~14.5 s) so that the API
        # answers 503 rather than hanging through a longer outage.
        "result_backend_transport_options": {"retry_policy": dict(RESULT_RETRY_POLICY)},
        "task_queues": task_queues(),
        "task_routes": TASK_ROUTES,
        "task_default_queue": "default",
        "task_default_exchange": TASK_EXCHANGE.name,
        "task_default_exchange_type": TASK_EXCHANGE.type,
        "task_default_routing_key": "default",
        "task_default_queue_type": "quorum",
        "task_create_missing_queues": False,
        # Acknowledge after the task ran, so a task on a worker that dies is redelivered.
        "task_acks_late": True,
        # A worker process killed mid-task (OOM, kill -9) rejects the message: redelivered.
        "task_reject_on_worker_lost": True,
        # One unacknowledged task per process: redelivery after a fault touches few tasks and
        # long tasks do not sit behind each other on one busy worker.
        "worker_prefetch_multiplier": 1,
        # Quorum queues do not support global QoS; Celery switches it off when it sees them.
        "worker_detect_quorum_queues": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_track_started": True,
        # Workers publish task events (received, started, succeeded...) for Flower to show.
        "worker_send_task_events": True,
        # Celery's own transient queues (remote-control mailboxes <host>.celery.pidbox, their
        # replies, Flower's celeryev.*) declared exclusive: RabbitMQ 4.0 deprecates transient
        # non-exclusive queues (deprecated feature transient_nonexcl_queues; the e2e suite asserts
        # `rabbitmqctl list_deprecated_features --used` is empty). Celery 5.7's defaults, stated so
        # that a Celery upgrade that changes them cannot bring the deprecated feature back.
        "control_queue_exclusive": True,
        "control_queue_durable": False,
        "event_queue_exclusive": True,
        "event_queue_durable": False,
        # Periodic tasks, sent by the one `celery beat` of the stack (celery_worker_beat in
        # inventory): a ping every 60 s, so an operator sees beat work in the worker logs.
        "beat_schedule": {
            "ping-every-minute": {"task": "fleet.tasks.ping", "schedule": 60.0},
        },
        # The HTTP request's correlation id on every worker log line (fleet.correlation; "-"
        # outside a task).
        "worker_log_format": "[%(asctime)s: %(levelname)s/%(processName)s] [%(request_id)s] %(message)s",
        "worker_task_log_format": (
            "[%(asctime)s: %(levelname)s/%(processName)s] [%(request_id)s] %(task_name)s[%(task_id)s]: %(message)s"
        ),
        # Retry a publish while the client reconnects to another node or the queue elects a new
        # leader (seconds); a nacked publish waits NACK_RETRY_WAIT before the next try.
        "task_publish_retry": True,
        "task_publish_retry_policy": {
            "max_retries": PUBLISH_MAX_RETRIES,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 2,
            "errback": wait_after_nack,
        },
    }
    if any(url.startswith("amqps://") for url in settings.broker_urls):
        # Straight to the nodes over TLS (without the local HAProxy, which otherwise does TLS):
        # the node's certificate must chain to the CA, and this host presents its own, which the
        # nodes require. py-amqp gets no server name here (one setting serves every URL), so it
        # checks the chain, not the name; HAProxy checks both (roles/broker_proxy).
        conf["broker_use_ssl"] = {
            "ca_certs": settings.tls_ca_file,
            "certfile": settings.tls_cert_file,
            "keyfile": settings.tls_key_file,
            "cert_reqs": ssl.CERT_REQUIRED,
        }
    if settings.result_backend_tls:
        # Redis over TLS: its certificate must chain to the CA and name the address connected to
        # (redis-py checks the host name); Redis asks for this host's certificate too. With
        # Sentinel, this is what the master connections use (SentinelManagedSSLConnection).
        conf["redis_backend_use_ssl"] = {
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
            "ssl_ca_certs": settings.tls_ca_file,
            "ssl_certfile": settings.tls_cert_file,
            "ssl_keyfile": settings.tls_key_file,
        }
    if settings.result_backend.startswith("sentinel://"):
        conf["result_backend_transport_options"].update(sentinel_transport_options(settings))
    if settings.role == "worker":
        # A worker stores every result, and a failover of the result backend must not lose one:
        # retry the whole store (WORKER_STORE_MAX_RETRIES) rather than fail the task. With
        # acks_late the task's message stays unacknowledged meanwhile. Each try reconnects, and
        # with Sentinel that asks for the master anew.
        conf["result_backend_always_retry"] = True
        conf["result_backend_max_retries"] = WORKER_STORE_MAX_RETRIES
        conf["result_backend_base_sleep_between_retries_ms"] = 500
        conf["result_backend_max_sleep_between_retries_ms"] = 2000
    if settings.role == "producer":
        # Publisher confirms: a publish returns only once the broker has taken the message, so a
        # node lost mid-publish raises instead of dropping it (a lab trial lost 113-121 of 200 tasks
        # without). Producers only: in a worker, confirms made the event loop hang on its own
        # heartbeat publish while a broker node was frozen.
        conf["broker_transport_options"] = {"confirm_publish": True}
    conf.update(settings.extra)
    return conf
