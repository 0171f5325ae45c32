import json

import pytest
from fleet.settings import Settings, SettingsError
from fleet.web import API_TASKS, create_app, json_depth, token_digest

from .conftest import TOKENS


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
    assert body["result_backend"].startswith("down: ")
    # Open to any caller: the exception's class, never its message (addresses, ports).
    assert " " not in body["result_backend"].removeprefix("down: ")
    assert ":" not in body["result_backend"].removeprefix("down: ")


def test_every_api_task_is_registered(client):
    celery = client.application.extensions["celery"]
    for name in API_TASKS.values():
        assert name in celery.tasks


def test_a_body_above_the_limit_is_413_in_json(client):
    resp = client.post("/tasks/ping", data=b"[" + b" " * (2 * 1024 * 1024) + b"]", content_type="application/json")
    assert resp.status_code == 413
    assert resp.is_json
    assert "Too Large" in resp.get_json()["error"]


def test_a_body_nested_100000_deep_is_400_in_json_not_500(client):
    resp = client.post("/tasks/ping", data=b"[" * 100_000 + b"]" * 100_000, content_type="application/json")
    assert resp.status_code == 400
    assert "deeper than 32 levels" in resp.get_json()["error"]


def test_nesting_inside_strings_is_not_counted(client):
    resp = client.post("/tasks/send_email", json={"args": ["[" * 1000 + "{" * 1000], "kwargs": {"subject": '\\"[[['}})
    assert resp.status_code == 202
    assert json_depth(json.dumps({"a": "[[[[{{{{" * 40, "b": [[1]]}).encode()) == 3


@pytest.mark.parametrize(
    "method, path, status",
    [("get", "/no/such/route", 404), ("delete", "/tasks/ping", 405), ("put", "/healthz", 405)],
)
def test_unknown_routes_and_methods_answer_in_json(client, method, path, status):
    resp = getattr(client, method)(path)
    assert resp.status_code == status
    assert resp.is_json
    assert resp.get_json()["error"]


def test_an_unforeseen_error_is_500_in_json_without_details(client, monkeypatch):
    monkeypatch.setattr("fleet.web._describe", lambda result: 1 / 0)
    resp = client.get("/tasks/00000000-0000-0000-0000-000000000000")
    # _describe's failures are the backend's 503; an error in the route's own code is a 500.
    assert resp.status_code == 503
    monkeypatch.setattr("fleet.web._is_uuid", lambda value: 1 / 0)
    resp = client.get("/tasks/00000000-0000-0000-0000-000000000000")
    assert resp.status_code == 500
    assert resp.is_json
    assert "ZeroDivision" not in resp.get_json()["error"]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", "Bearer ", "Basic dW5pdC10ZXN0cy10b2tlbg==", "unit-tests-token", TOKENS["unit-tests"]],
)
@pytest.mark.parametrize(
    "method, path", [("post", "/tasks/ping"), ("get", "/tasks/00000000-0000-0000-0000-000000000000"),
                     ("post", "/canvas/chain"), ("get", "/no/such/route")],
)  # fmt: skip
def test_a_request_without_a_known_token_is_401_in_json(client, authorization, method, path):
    headers = {"Authorization": authorization} if authorization else {}
    client.environ_base.pop("HTTP_AUTHORIZATION")
    resp = getattr(client, method)(path, headers=headers)
    assert resp.status_code == 401
    assert resp.is_json and "token" in resp.get_json()["error"]
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.headers["X-Request-ID"]


def test_health_and_contract_need_no_token(client_backend_down):
    client_backend_down.environ_base.pop("HTTP_AUTHORIZATION")
    assert client_backend_down.get("/healthz").status_code == 503  # answered, not 401
    assert client_backend_down.get("/openapi.json").status_code == 200


def test_each_client_is_known_by_its_own_token(caplog):
    tokens = {"ops": token_digest("ops-token"), "demo": token_digest("demo-token")}
    client = create_app(Settings(broker_urls=("memory://",), result_backend="cache+memory://", api_tokens=tokens))
    client = client.test_client()
    caplog.set_level("INFO", logger="fleet.web")
    assert client.post("/tasks/ping", headers={"Authorization": "Bearer demo-token"}).status_code == 202
    assert client.post("/tasks/ping", headers={"Authorization": "bearer ops-token"}).status_code == 202
    assert [r.getMessage().split()[-1] for r in caplog.records if "published" in r.getMessage()] == ["demo", "ops"]


def test_the_producer_refuses_to_start_without_a_token():
    with pytest.raises(SettingsError, match="api_tokens"):
        create_app(Settings(broker_urls=("memory://",), result_backend="cache+memory://"))


def test_a_token_is_stored_as_its_sha256_digest():
    assert token_digest("abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
