import pytest
from fleet import tasks


def test_tasks_report_where_they_ran():
    result = tasks.ping.apply().get()
    assert {"hostname", "queue", "task_id"} <= set(result)


def test_render_report_is_deterministic():
    a = tasks.render_report.apply(kwargs={"rounds": 10}).get()
    b = tasks.render_report.apply(kwargs={"rounds": 10}).get()
    assert a["digest"] == b["digest"]


def test_bounds_are_enforced():
    with pytest.raises(ValueError):
        tasks.send_email.apply(args=["a@b"], kwargs={"duration": 99}).get()
    with pytest.raises(ValueError):
        tasks.render_report.apply(kwargs={"rounds": 0}).get()


def test_always_fail_fails():
    with pytest.raises(RuntimeError, match="always fails"):
        tasks.always_fail.apply().get()
