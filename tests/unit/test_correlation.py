import logging
import uuid
from types import SimpleNamespace

import pytest
from celery.signals import before_task_publish
from fleet import correlation


@pytest.mark.parametrize("value", ["abc-123", "0f0e9a3c-1b2d-4c5e-9f00-123456789abc", "a.b_c"])
def test_a_plausible_http_id_is_kept(value):
    assert correlation.from_http(value) == value


@pytest.mark.parametrize("value", [None, "", "x" * 129, "two words", "line\nbreak", "<script>"])
def test_an_absent_or_odd_http_id_is_replaced_by_a_uuid(value):
    assert uuid.UUID(correlation.from_http(value)).version == 4


def test_the_filter_puts_the_current_id_on_records():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    correlation.RequestIdFilter().filter(record)
    assert record.request_id == "-"
    token = correlation.bind("req-1")
    try:
        correlation.RequestIdFilter().filter(record)
        assert record.request_id == "req-1"
    finally:
        correlation.unbind(token)


@pytest.fixture
def published_headers():
    seen = []

    def capture(headers=None, **_kwargs):
        seen.append(dict(headers or {}))

    before_task_publish.connect(capture, weak=False)
    yield seen
    before_task_publish.disconnect(capture)


def test_the_api_echoes_the_id_and_puts_it_in_the_task_headers(client, published_headers):
    resp = client.post("/tasks/ping", headers={"X-Request-ID": "trace-42"})
    assert resp.status_code == 202
    assert resp.headers["X-Request-ID"] == "trace-42"
    assert resp.get_json()["request_id"] == "trace-42"
    assert published_headers[-1]["request_id"] == "trace-42"
    assert correlation.current() is None  # nothing leaks past the request


def test_the_api_makes_an_id_when_none_is_sent(client, published_headers):
    resp = client.post("/tasks/ping")
    request_id = resp.headers["X-Request-ID"]
    assert uuid.UUID(request_id)
    assert published_headers[-1]["request_id"] == request_id


def test_a_task_runs_with_the_id_of_its_message_and_restores_the_previous_one():
    task = SimpleNamespace(request=SimpleNamespace(request_id="trace-7", headers=None))
    correlation._bind_task_request_id(task_id="t1", task=task)
    assert correlation.current() == "trace-7"
    correlation._unbind_task_request_id(task_id="t1")
    assert correlation.current() is None


def test_protocol_1_style_headers_are_read_too():
    task = SimpleNamespace(request=SimpleNamespace(headers={"request_id": "trace-8"}))
    correlation._bind_task_request_id(task_id="t2", task=task)
    assert correlation.current() == "trace-8"
    correlation._unbind_task_request_id(task_id="t2")


def test_a_received_line_gets_the_id_of_the_task_it_is_about():
    correlation._received["task-9"] = "trace-9"
    record = logging.LogRecord("celery.worker.strategy", logging.INFO, __file__, 1, "received", None, None)
    record.data = {"id": "task-9", "name": "fleet.tasks.ping"}
    correlation.RequestIdFilter().filter(record)
    assert record.request_id == "trace-9"


def test_the_app_tasks_use_the_remembering_request_class():
    from fleet import tasks

    assert tasks.send_email.Request == "fleet.correlation:TaskRequest"
