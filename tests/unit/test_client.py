import subprocess
import sys
from pathlib import Path

import pytest
from fleet.celeryconfig import task_queues
from fleet.client import main, make_client, send
from fleet.settings import Settings

APP = Path(__file__).resolve().parents[2] / "app"


def test_the_client_imports_no_task_module():
    code = "import sys, fleet.client; sys.exit(1 if 'fleet.tasks' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=APP, env={"PYTHONPATH": str(APP)}).returncode == 0


def test_send_task_by_name_lands_in_the_routed_queue():
    app = make_client(Settings(broker_urls=("memory://",), result_backend="cache+memory://"))
    email = next(q for q in task_queues() if q.name == "email")
    with app.connection_for_write() as conn:
        email.bind(conn.default_channel).declare()
        email.bind(conn.default_channel).purge()  # the in-memory broker is shared by all tests
    code, report = send(app, "fleet.tasks.send_email", ["a@example.invalid"], {"subject": "hi"}, wait=0)
    assert (code, report["queue"], report["state"]) == (0, "email", "SENT")
    with app.connection_for_read() as conn:
        message = email.bind(conn.default_channel).get(no_ack=True)
    assert message is not None
    assert message.headers["task"] == "fleet.tasks.send_email"
    assert message.headers["id"] == report["task_id"]


def test_no_result_in_time_exits_2():
    app = make_client(Settings(broker_urls=("memory://",), result_backend="cache+memory://"))
    code, report = send(app, "fleet.tasks.ping", [], {}, wait=0.2)
    assert code == 2
    assert report["state"] == "PENDING"


@pytest.mark.parametrize("argv", [["x", "--args", "{"], ["x", "--kwargs", "[]"]])
def test_bad_json_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "JSON" in capsys.readouterr().err


def test_a_task_no_broker_took_exits_3_with_the_reason(monkeypatch, capsys):
    import json

    from fleet import client
    from kombu.exceptions import OperationalError

    def refused(*_args, **_kwargs):
        raise OperationalError("no broker")

    monkeypatch.setattr(client, "load_settings", lambda: None)
    monkeypatch.setattr(client, "make_client", lambda _settings: None)
    monkeypatch.setattr(client, "send", refused)
    assert client.main(["fleet.tasks.ping"]) == 3
    assert json.loads(capsys.readouterr().out) == {"state": "NOT SENT", "error": "OperationalError: no broker"}
