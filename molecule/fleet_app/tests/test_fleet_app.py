"""roles/fleet_app: the pinned venv, the app's user, and a configuration only that user can read."""

from pathlib import Path

from conftest import APP_VENV, app_python

LOCK = Path(__file__).resolve().parents[3] / "app" / "requirements.lock"


def pins() -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in LOCK.read_text().splitlines()]
    return {name.lower().replace("_", "-"): version for name, version in (p.split("==") for p in lines if p)}


def test_app_user_is_a_system_account_without_login(host):
    user = host.user("fleet")
    assert user.uid < 1000
    assert user.shell in ("/usr/sbin/nologin", "/bin/false")


def test_venv_holds_exactly_the_pinned_versions(host):
    frozen = host.check_output(f"{APP_VENV}/bin/pip list --format=freeze --disable-pip-version-check")
    installed = {n.lower().replace("_", "-"): v for n, v in (line.split("==") for line in frozen.splitlines())}
    for name, version in pins().items():
        assert installed.get(name) == version, name
    assert "fleet" in installed


def test_config_readable_by_root_and_app_group_only(host):
    conf = host.file("/etc/fleet/fleet.toml")
    assert (conf.user, conf.group, conf.mode) == ("root", "fleet", 0o640)
    folder = host.file("/etc/fleet")
    assert (folder.user, folder.group, folder.mode) == ("root", "fleet", 0o750)
    assert host.run("runuser -u nobody -- cat /etc/fleet/fleet.toml").rc != 0


def test_app_reads_its_settings_with_quoted_password(host):
    code = (
        "from fleet.settings import load_settings; s = load_settings(); "
        "print(s.role); print(*s.broker_urls, sep='\\n'); print(s.result_backend)"
    )
    out = app_python(host, code)
    role, *urls, backend = out.splitlines()
    assert role == "worker"
    assert urls == [
        "amqp://fleet-worker:molecule%20p%40ss%2Fword@10.0.0.11:5672/fleet",
        "amqp://fleet-worker:molecule%20p%40ss%2Fword@10.0.0.12:5672/fleet",
    ]
    assert backend == "redis://:molecule-redis-password@10.0.0.20:6379/0"


def test_log_folder_writable_by_app_only(host):
    logs = host.file("/var/log/fleet")
    assert (logs.user, logs.group, logs.mode) == ("root", "fleet", 0o750)


def test_error_reporting_off_without_a_dsn(host):
    # fleet_app_sentry_dsn unset (the default): no DSN in the config, the SDK never imported.
    assert not host.file("/etc/fleet/fleet.toml").contains("sentry_dsn")
    code = (
        "import sys; from fleet.settings import load_settings; from fleet.errors import init_error_reporting; "
        "print(init_error_reporting(load_settings(), 'worker'), 'sentry_sdk' in sys.modules)"
    )
    assert app_python(host, code).strip() == "False False"
