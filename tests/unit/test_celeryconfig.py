import ssl
from pathlib import Path

import pytest
import redis
import yaml
from celery.app.backends import by_url
from fleet.celery_app import (
    PublishOnlyRedisBackend,
    PublishOnlySentinelBackend,
    RetriedRedisBackend,
    RetriedSentinelBackend,
    make_celery,
    publish_only_backend,
)
from fleet.celeryconfig import DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, QUEUES, TASK_ROUTES, celery_config
from fleet.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _conf(role):
    return celery_config(
        Settings(broker_urls=("amqp://a@h1//", "amqp://a@h2//"), result_backend="redis://:p@h/0", role=role)
    )


def test_every_queue_is_a_durable_quorum_queue():
    queues = _conf("worker")["task_queues"]
    assert [q.name for q in queues] == list(QUEUES)
    for q in queues:
        assert q.queue_arguments == {"x-queue-type": "quorum"}
        assert q.durable
        assert q.routing_key == q.name
        assert q.exchange.type == "topic"


def test_every_route_names_a_declared_queue():
    assert {r["queue"] for r in TASK_ROUTES.values()} <= set(QUEUES)


def test_reliability_settings():
    conf = _conf("worker")
    assert conf["task_acks_late"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["broker_url"] == ["amqp://a@h1//", "amqp://a@h2//"]
    assert conf["broker_connection_max_retries"] is None


def test_publisher_confirms_only_in_the_producer():
    assert _conf("producer")["broker_transport_options"] == {"confirm_publish": True}
    assert "broker_transport_options" not in _conf("worker")


def test_tasks_route_to_their_queue():
    # drills=True: the routes name the drill tasks too (fleet.drill_tasks).
    app = make_celery(Settings(broker_urls=("memory://",), result_backend="cache+memory://", drills=True))
    app.loader.import_default_modules()
    for name, route in TASK_ROUTES.items():
        assert name in app.tasks
        assert app.amqp.router.route({}, name)["queue"].name == route["queue"]


def test_inventory_queue_list_matches_the_app():
    # RabbitMQ permissions are built from fleet_queues; they must name the app's queues.
    group_vars = yaml.safe_load((ROOT / "inventory/stack/group_vars/all.yml").read_text())
    assert tuple(group_vars["fleet_queues"]) == QUEUES


def test_inventory_dead_letter_names_match_the_app():
    # The broker policy and the worker's permissions name the dead-letter exchange and queue.
    group_vars = yaml.safe_load((ROOT / "inventory/stack/group_vars/all.yml").read_text())
    assert group_vars["fleet_dead_letter_exchange"] == DEAD_LETTER_EXCHANGE.name
    assert group_vars["fleet_dead_letter_queue"] == DEAD_LETTER_QUEUE.name


def test_dead_letter_queue_is_a_quorum_queue_on_a_fanout_exchange():
    assert DEAD_LETTER_QUEUE.queue_arguments == {"x-queue-type": "quorum"}
    assert DEAD_LETTER_QUEUE.durable
    # Fanout: every dead-lettered task lands here whatever queue (routing key) it came from.
    assert DEAD_LETTER_EXCHANGE.type == "fanout"
    assert DEAD_LETTER_QUEUE.name not in QUEUES


def test_a_nacked_publish_waits_before_the_next_try(monkeypatch):
    from amqp.exceptions import MessageNacked
    from fleet import celeryconfig

    slept = []
    monkeypatch.setattr(celeryconfig.time, "sleep", slept.append)
    policy = _conf("producer")["task_publish_retry_policy"]
    assert policy["errback"] is celeryconfig.wait_after_nack
    policy["errback"](MessageNacked(), 0)
    assert slept == [celeryconfig.NACK_RETRY_WAIT]
    # A failed connect already waits as kombu's policy says: nothing added.
    policy["errback"](ConnectionRefusedError(), 0.5)
    assert slept == [celeryconfig.NACK_RETRY_WAIT]
    assert policy["max_retries"] * celeryconfig.NACK_RETRY_WAIT >= 10


def test_celerys_own_transient_queues_are_exclusive():
    """RabbitMQ 4.0 deprecates transient non-exclusive queues: the remote-control mailbox, its
    reply queue and the event receiver's queue must all be declared exclusive."""
    app = make_celery(Settings(broker_urls=("memory://",), result_backend="cache+memory://"))
    mailbox = app.control.mailbox
    assert mailbox.get_queue("worker1").exclusive is True
    assert mailbox.get_reply_queue().exclusive is True
    assert not mailbox.get_queue("worker1").durable
    receiver = app.events.Receiver(None, handlers={})
    assert receiver.queue.exclusive is True
    assert not receiver.queue.durable


def test_tls_urls_verify_the_server_and_present_the_hosts_certificate():
    files = {"tls_ca_file": "/tls/ca.crt", "tls_cert_file": "/tls/host.crt", "tls_key_file": "/tls/host.key"}
    conf = celery_config(Settings(broker_urls=("amqps://a@h1:5671//",), result_backend="rediss://:p@h/0", **files))
    assert conf["broker_use_ssl"] == {
        "ca_certs": "/tls/ca.crt", "certfile": "/tls/host.crt", "keyfile": "/tls/host.key",
        "cert_reqs": ssl.CERT_REQUIRED,
    }  # fmt: skip
    assert conf["redis_backend_use_ssl"] == {
        "ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": "/tls/ca.crt",
        "ssl_certfile": "/tls/host.crt", "ssl_keyfile": "/tls/host.key",
    }  # fmt: skip


def test_plaintext_urls_set_no_tls_options():
    conf = _conf("worker")
    assert "broker_use_ssl" not in conf and "redis_backend_use_ssl" not in conf


def test_sentinel_urls_give_the_master_name_and_the_sentinels_password_and_tls():
    files = {"tls_ca_file": "/ca.crt", "tls_cert_file": "/h.crt", "tls_key_file": "/h.key"}
    backend = "sentinel://:p%2Fw@10.0.0.1:26379/0;sentinel://:p%2Fw@10.0.0.2:26379/0"
    conf = celery_config(
        Settings(
            broker_urls=("amqp://a@h1//",),
            result_backend=backend,
            result_backend_master="fleet",
            result_backend_tls=True,
            role="worker",
            **files,
        )
    )
    options = conf["result_backend_transport_options"]
    assert options["master_name"] == "fleet"
    kwargs = options["sentinel_kwargs"]
    assert kwargs["password"] == "p/w"
    assert kwargs["ssl"] is True and kwargs["ssl_certfile"] == "/h.crt" and kwargs["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    assert conf["redis_backend_use_ssl"]["ssl_ca_certs"] == "/ca.crt"
    # A worker keeps storing a result through a failover (~7 s) for ~30 s.
    assert conf["result_backend_always_retry"] is True
    assert conf["result_backend_max_retries"] * conf["result_backend_max_sleep_between_retries_ms"] / 2000 >= 25


def test_a_producer_rides_out_a_failover_then_gives_up():
    conf = celery_config(Settings(broker_urls=("amqp://a@h1//",), result_backend="redis://:p@h/0", role="producer"))
    policy = conf["result_backend_transport_options"]["retry_policy"]
    waits = [
        min(policy["interval_start"] + i * policy["interval_step"], policy["interval_max"])
        for i in range(policy["max_retries"])
    ]
    assert 8 <= sum(waits) <= 15, waits  # longer than a Sentinel failover, short of a client's patience
    assert "result_backend_always_retry" not in conf


@pytest.mark.parametrize(
    ("url", "backend_class"),
    [
        ("redis://:p@h:6379/0", PublishOnlyRedisBackend),
        ("rediss://:p@h:6379/0?ssl_cert_reqs=required", PublishOnlyRedisBackend),
        ("sentinel://:p@s1:26379/0;sentinel://:p@s2:26379/0", PublishOnlySentinelBackend),
    ],
)
def test_the_api_selects_a_publish_only_backend_through_celerys_own_class_plus_url_form(url, backend_class):
    setting = publish_only_backend(url)
    cls, passed_url = by_url(setting)
    assert cls is backend_class and passed_url == url


def test_other_backends_are_left_as_they_are():
    assert publish_only_backend("cache+memory://") == "cache+memory://"


def test_a_publish_only_backend_subscribes_to_nothing_before_a_publish():
    app = make_celery(Settings(broker_urls=("memory://",), result_backend="redis://:p@127.0.0.1:9/0"))
    app.conf.result_backend = publish_only_backend(app.conf.result_backend)
    backend = app.backend
    assert isinstance(backend, PublishOnlyRedisBackend)
    backend.on_task_call(None, "0b6f0a3e-1d1e-4c55-9a53-1c3f6a1b2c3d")  # Celery's plain backend would connect here
    assert backend.result_consumer.subscribed_to == set()


def test_the_web_app_publishes_without_a_result_subscription():
    from fleet.web import create_app

    app = create_app(
        Settings(broker_urls=("memory://",), result_backend="redis://:p@127.0.0.1:9/0", api_tokens={"t": "x" * 40})
    )
    assert isinstance(app.extensions["celery"].backend, PublishOnlyRedisBackend)


@pytest.mark.parametrize(
    ("url", "backend_class"),
    [
        ("redis://:p@h:6379/0", RetriedRedisBackend),
        ("sentinel://:p@s1:26379/0;sentinel://:p@s2:26379/0", RetriedSentinelBackend),
    ],
)
def test_a_workers_backend_retries_each_redis_command_through_a_failover(url, backend_class):
    # The chord counter's script is sent outside Celery's store retry: a connection lost there
    # failed the chord (backend-kill drill). redis-py's retry must reach the connections.
    settings = Settings(broker_urls=("memory://",), result_backend=url, result_backend_master="m", role="worker")
    backend = make_celery(settings).backend
    assert type(backend) is backend_class
    pool = backend.client.connection_pool
    connection = pool.make_connection()
    assert {redis.exceptions.ConnectionError, redis.exceptions.TimeoutError} <= set(connection.retry_on_error)
    waits = [connection.retry._backoff.compute(failure) for failure in range(1, connection.retry.get_retries() + 1)]
    assert 10 <= sum(waits) <= 20, waits  # longer than a Sentinel failover (6-9 s), then the store's own retry


def test_a_producers_backend_sends_each_command_once():
    settings = Settings(broker_urls=("memory://",), result_backend="redis://:p@h:6379/0", role="producer")
    connection = make_celery(settings).backend.client.connection_pool.make_connection()
    assert connection.retry.get_retries() == 0
