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


def test_a_message_from_an_older_producer_runs_with_the_defaults():
    # Version 1 of send_email took only `to`; `subject` and `duration` came later, with defaults.
    result = tasks.send_email.apply(args=["a@example.invalid"], kwargs={"duration": 0}).get()
    assert result["subject"] == ""


def test_a_field_from_a_newer_producer_is_dropped_with_a_warning(caplog):
    result = tasks.send_email.apply(
        args=["a@example.invalid"], kwargs={"duration": 0, "priority": "high", "cc": ["b@example.invalid"]}
    ).get()
    assert result["to"] == "a@example.invalid"
    assert "ignoring arguments this version does not take: ['cc', 'priority']" in caplog.text


def test_positional_arguments_are_not_filtered():
    with pytest.raises(TypeError):
        tasks.ping.apply(args=[1]).get()
