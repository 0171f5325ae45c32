"""roles/celery_worker: one supervisord program per binding, consuming exactly its queues."""

import testinfra
from conftest import app_python, rabbitmqctl_json

#: The worker programs run on the scenario's worker host; the broker is on its web host.
testinfra_hosts = ["podman://molecule-worker"]
BROKER = testinfra.get_host("podman://molecule-web")


def test_programs_running(host):
    out = host.check_output("supervisorctl status celery:")
    lines = dict(line.split(None, 1) for line in out.splitlines())
    assert set(lines) == {"celery:default", "celery:email"}
    assert all(state.startswith("RUNNING") for state in lines.values()), out


def test_program_definitions(host):
    conf = host.file("/etc/supervisor/conf.d/celery.conf")
    assert conf.contains("--queues default --pool prefork --concurrency 2")
    assert conf.contains("--queues email --pool threads --concurrency 4")
    assert conf.contains("^stopwaitsecs=300$")
    assert conf.contains("^stopsignal=TERM$")
    assert conf.contains("^user=fleet$")


def test_workers_run_as_app_user(host):
    procs = [p for p in host.process.filter(user="fleet") if "celery" in p.args and "worker" in p.args]
    assert procs
    assert any("--queues default" in p.args for p in procs)
    assert any("--queues email" in p.args for p in procs)


def test_queues_consumed_only_where_bound(host):
    listed = rabbitmqctl_json(BROKER, "list_queues", "-p", "fleet", "name", "consumers", "type")
    queues = {q["name"]: q for q in listed}
    assert queues["default"]["consumers"] >= 1
    assert queues["email"]["consumers"] >= 1
    assert queues["default"]["type"] == "quorum"
    assert queues.get("reports", {"consumers": 0})["consumers"] == 0


def test_task_runs_on_the_worker(host):
    code = (
        "from fleet.celery_app import make_celery; from fleet.settings import load_settings; "
        "app = make_celery(load_settings()); "
        "r = app.send_task('fleet.tasks.send_email', kwargs={'to': 'a@example.org'}); "
        "print(r.get(timeout=60)['queue'])"
    )
    out = app_python(host, code)
    assert out.strip() == "email"


def test_beat_runs_once_under_supervisord(host):
    assert "RUNNING" in host.check_output("supervisorctl status beat")
    beats = [p for p in host.process.filter(user="fleet") if " beat " in f" {p.args} "]
    assert len(beats) == 1, [p.args for p in beats]
    state = host.file("/var/lib/fleet-beat")
    assert (state.user, state.mode) == ("fleet", 0o750)
    assert (
        host.file("/var/lib/fleet-beat/celerybeat-schedule").exists
        or host.file("/var/lib/fleet-beat/celerybeat-schedule.db").exists
    )
