import pytest
from celery import Celery
from fleet.canvas import MAX_TASKS, CanvasError, build
from fleet.web import API_TASKS


@pytest.fixture
def eager_app():
    # Tasks run in-process: the canvas shapes are checked end to end without a broker.
    app = Celery("canvas-test")
    app.conf.update(task_always_eager=True, result_backend="cache+memory://", broker_url="memory://")
    import fleet.tasks  # noqa: F401  (shared tasks bind to this app)

    return app


def _step(task, *args, **kwargs):
    return {"task": task, "args": list(args), "kwargs": kwargs}


def test_chain_feeds_each_result_to_the_next_step(eager_app):
    sig = build(eager_app, API_TASKS, "chain", {"steps": [_step("add", 1, 2), _step("add", 10), _step("add", 100)]})
    assert sig.apply().get() == 113


def test_group_runs_every_task(eager_app):
    sig = build(eager_app, API_TASKS, "group", {"tasks": [_step("add", i, i) for i in range(4)]})
    assert sig.apply().get() == [0, 2, 4, 6]


def test_chord_body_gets_the_header_results(eager_app):
    body = {"header": [_step("add", i, 1) for i in range(3)], "body": _step("total")}
    assert build(eager_app, API_TASKS, "chord", body).apply().get() == 6


def test_map_starmap_and_chunks(eager_app):
    assert build(eager_app, API_TASKS, "map", {"task": "total", "items": [[1, 2], [3]]}).apply().get() == [3, 3]
    assert build(eager_app, API_TASKS, "starmap", {"task": "add", "items": [[1, 2], [3, 4]]}).apply().get() == [3, 7]
    chunks = build(eager_app, API_TASKS, "chunks", {"task": "add", "items": [[i, i] for i in range(5)], "size": 2})
    assert chunks.apply().get() == [[0, 2], [4, 6], [8]]


@pytest.mark.parametrize(
    "kind, body, reason",
    [
        ("chain", {"steps": []}, "non-empty array"),
        ("chain", {"steps": [_step("format_disk")]}, "unknown task 'format_disk'"),
        ("chain", {"steps": [{"task": "add", "args": "1"}]}, "'args' must be an array"),
        ("chain", {"steps": [_step("add", 1, 2)], "extra": 1}, "unknown fields"),
        ("group", {"tasks": [_step("ping")] * (MAX_TASKS + 1)}, f"at most {MAX_TASKS}"),
        ("chord", {"header": [_step("ping")]}, "body must be an object"),
        ("starmap", {"task": "add", "items": [1, 2]}, "array of positional arguments"),
        ("chunks", {"task": "add", "items": [[1, 2]], "size": 0}, "'size' must be an integer"),
        ("fanout", {}, "unknown canvas"),
    ],
)
def test_malformed_canvas_is_refused_before_anything_is_sent(eager_app, kind, body, reason):
    with pytest.raises(CanvasError, match=reason.replace("(", r"\(").replace("[", r"\[")):
        build(eager_app, API_TASKS, kind, body)


def test_api_publishes_a_chain_and_a_group(client):
    resp = client.post("/canvas/chain", json={"steps": [_step("add", 1, 2), _step("add", 3)]})
    assert resp.status_code == 202, resp.get_json()
    assert len(resp.get_json()["task_id"]) == 36
    resp = client.post("/canvas/group", json={"tasks": [_step("ping"), _step("ping")]})
    assert resp.status_code == 202
    body = resp.get_json()
    assert len(body["task_ids"]) == 2
    group = client.get(f"/groups/{body['group_id']}").get_json()
    assert (group["total"], group["completed"]) == (2, 0)


def test_api_answers_400_and_404_for_bad_canvas(client):
    assert client.post("/canvas/chain", json={"steps": "x"}).status_code == 400
    assert client.post("/canvas/fanout", json={}).status_code == 404
    assert client.get("/groups/not-a-uuid").status_code == 400


def test_api_link_and_link_error(client):
    resp = client.post("/tasks/always_fail", json={"link_error": True, "link": _step("ping")})
    assert resp.status_code == 202
    assert client.post("/tasks/ping", json={"link_error": "yes"}).status_code == 400
    assert client.post("/tasks/ping", json={"link": {"task": "nope"}}).status_code == 400


def test_error_callback_records_exception_and_traceback(eager_app, caplog):
    from fleet import tasks

    failed = tasks.always_fail.apply(kwargs={"reason": "boom"}, link_error=tasks.record_failure.s())
    assert failed.state == "FAILURE"
    assert f"task fleet.tasks.always_fail[{failed.id}] failed: RuntimeError('boom" in caplog.text
    assert "Traceback (most recent call last)" in caplog.text
