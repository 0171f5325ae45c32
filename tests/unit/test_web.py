import json

import pytest
from fleet.web import API_TASKS


def test_submit_returns_202_with_task_id_and_queue(client):
    resp = client.post("/tasks/send_email", json={"args": ["a@example.invalid"], "kwargs": {"subject": "hi"}})
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["queue"] == "email"
    assert len(body["task_id"]) == 36


def test_submit_without_body_uses_no_arguments(client):
    resp = client.post("/tasks/ping")
    assert resp.status_code == 202
    assert resp.get_json()["queue"] == "default"


def test_unknown_task_is_404(client):
    resp = client.post("/tasks/format_disk", json={})
    assert resp.status_code == 404
    assert "unknown task" in resp.get_json()["error"]


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"args": "x"}).encode(), "'args' must be a JSON array"),
        (json.dumps({"kwargs": [1]}).encode(), "'kwargs' must be a JSON object"),
        (json.dumps({"argz": []}).encode(), "unknown fields"),
        (json.dumps({"kwargs": {"nope": 1}}).encode(), "arguments do not match"),
        (json.dumps({"args": [1, 2, 3, 4]}).encode(), "arguments do not match"),
    ],
)
def test_bad_payload_is_400_with_a_json_reason(client, data, reason):
    resp = client.post("/tasks/send_email", data=data, content_type="application/json")
    assert resp.status_code == 400
    assert reason in resp.get_json()["error"]


def test_status_rejects_a_malformed_id(client):
    resp = client.get("/tasks/not-a-uuid")
    assert resp.status_code == 400
    assert "UUID" in resp.get_json()["error"]


def test_status_of_an_unknown_task_is_pending(client):
    resp = client.get("/tasks/6f1c1f8e-7d7b-4a43-9f0a-0d3b3c3c1a11")
    assert resp.status_code == 200
    assert resp.get_json()["state"] == "PENDING"


def test_status_is_503_when_the_result_backend_is_down(client_backend_down):
    resp = client_backend_down.get("/tasks/6f1c1f8e-7d7b-4a43-9f0a-0d3b3c3c1a11")
    assert resp.status_code == 503


def test_healthz_reports_the_failed_component(client_backend_down):
    resp = client_backend_down.get("/healthz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["broker"] == "ok"
    assert body["result_backend"].startswith("down")


def test_every_api_task_is_registered(client):
    celery = client.application.extensions["celery"]
    for name in API_TASKS.values():
        assert name in celery.tasks
