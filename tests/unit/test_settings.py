import pytest
from fleet.settings import SettingsError, load_settings

GOOD = """
role = "worker"
broker_urls = ["amqp://w:p@10.0.0.1:5672/fleet", "amqp://w:p@10.0.0.2:5672/fleet"]
result_backend = "redis://:secret@10.0.0.9:6379/0"
broker_heartbeat = 15
[celery]
worker_concurrency = 3
"""


def test_reads_file(tmp_path):
    f = tmp_path / "fleet.toml"
    f.write_text(GOOD)
    s = load_settings(str(f), environ={})
    assert s.role == "worker"
    assert s.broker_urls == ("amqp://w:p@10.0.0.1:5672/fleet", "amqp://w:p@10.0.0.2:5672/fleet")
    assert s.broker_heartbeat == 15
    assert s.extra == {"worker_concurrency": 3}


def test_environment_overrides_file(tmp_path):
    f = tmp_path / "fleet.toml"
    f.write_text(GOOD)
    s = load_settings(str(f), environ={"FLEET_BROKER_URLS": "amqp://a@h1//;amqp://a@h2//", "FLEET_ROLE": "producer"})
    assert s.broker_urls == ("amqp://a@h1//", "amqp://a@h2//")
    assert s.role == "producer"


@pytest.mark.parametrize(
    "text, message",
    [
        ('result_backend = "redis://x"', "broker_urls"),
        ('broker_urls = ["amqp://h//"]', "result_backend"),
        ('broker_urls = ["http://h/"]\nresult_backend = "redis://x"', "amqp://"),
        ('broker_urls = ["amqp://h//"]\nresult_backend = "redis://x"\nrole = "boss"', "role"),
        ('broker_urls = ["amqp://h//"]\nresult_backend = "redis://x"\nbroker_heartbeat = "soon"', "heartbeat"),
        ("broker_urls = [", "TOML"),
        ('broker_urls = ["amqp://h//"]\nresult_backend = "redis://x"\napi_max_body_bytes = 0', "api_max_body_bytes"),
        ('broker_urls = ["amqp://h//"]\nresult_backend = "redis://x"\napi_max_json_depth = "x"', "json_depth"),
        ('broker_urls = ["amqp://h//"]\nresult_backend = "redis://x"\n[api_tokens]\nops = "plain-token"', "api_tokens"),
        ('broker_urls = ["amqp://h//"]\nresult_backend = "redis://x"\napi_tokens = "sha256:00"', "api_tokens"),
        ('broker_urls = ["amqps://h//"]\nresult_backend = "redis://x"', r"\[tls\]"),
        ('broker_urls = ["amqp://h//"]\nresult_backend = "rediss://x"\n[tls]\nca_file = "/ca"', r"\[tls\]"),
        ('broker_urls = ["amqp://h//"]\nresult_backend = "redis://x"\n[tls]\nca_file = 1', r"\[tls\]"),
        ('broker_urls = ["amqp://h//"]\nresult_backend = "http://x"', "result_backend must start"),
        ('broker_urls = ["amqp://h//"]\nresult_backend = "sentinel://:p@s1:26379/0"', "result_backend_master"),
        (
            'broker_urls = ["amqp://h//"]\nresult_backend = "sentinel://:p@s1:26379/0"\n'
            'result_backend_master = "fleet"\nresult_backend_tls = true',
            r"\[tls\]",
        ),
        ('broker_urls = ["amqp://h//"]\nresult_backend = "redis://x"\nresult_backend_tls = "yes"', "true or false"),
    ],
)
def test_bad_settings_are_refused(tmp_path, text, message):
    f = tmp_path / "fleet.toml"
    f.write_text(text)
    with pytest.raises(SettingsError, match=message):
        load_settings(str(f), environ={})


def test_missing_file_and_environment_is_an_error(tmp_path):
    with pytest.raises(SettingsError):
        load_settings(str(tmp_path / "absent.toml"), environ={})


def test_sentry_is_off_unless_a_dsn_is_set(monkeypatch):
    import sys

    from fleet.errors import init_error_reporting
    from fleet.settings import Settings

    monkeypatch.delitem(sys.modules, "sentry_sdk", raising=False)
    assert init_error_reporting(Settings(broker_urls=("memory://",), result_backend="x"), "worker") is False
    assert "sentry_sdk" not in sys.modules


def test_a_malformed_sentry_dsn_is_refused():
    import pytest
    from fleet.settings import SettingsError, load_settings

    env = {"FLEET_BROKER_URLS": "memory://", "FLEET_RESULT_BACKEND": "redis://x", "FLEET_SENTRY_DSN": "sentry.example"}
    with pytest.raises(SettingsError, match="sentry_dsn"):
        load_settings(path="/nonexistent", environ=env)


def test_drills_are_off_unless_the_file_turns_them_on(tmp_path):
    f = tmp_path / "fleet.toml"
    f.write_text(GOOD)
    assert load_settings(str(f), environ={}).drills is False
    f.write_text("drills = true\n" + GOOD)
    assert load_settings(str(f), environ={}).drills is True


def test_drills_must_be_a_boolean(tmp_path):
    f = tmp_path / "fleet.toml"
    f.write_text('drills = "yes"\n' + GOOD)
    with pytest.raises(SettingsError, match="drills must be true or false"):
        load_settings(str(f), environ={})


def test_workers_load_the_drill_tasks_only_where_drills_are_on(tmp_path):
    from fleet.celery_app import make_celery

    f = tmp_path / "fleet.toml"
    f.write_text(GOOD)
    assert make_celery(load_settings(str(f), environ={})).conf.imports == ("fleet.tasks",)
    f.write_text("drills = true\n" + GOOD)
    assert make_celery(load_settings(str(f), environ={})).conf.imports == ("fleet.tasks", "fleet.drill_tasks")


def test_api_tokens_are_read_as_digests(tmp_path):
    digest = "sha256:" + "0" * 64
    f = tmp_path / "fleet.toml"
    f.write_text(f'broker_urls = ["amqp://h//"]\nresult_backend = "redis://x"\n[api_tokens]\nops = "{digest}"\n')
    assert load_settings(str(f), environ={}).api_tokens == {"ops": digest}


def test_the_tls_table_gives_the_hosts_files(tmp_path):
    f = tmp_path / "fleet.toml"
    f.write_text(
        'broker_urls = ["amqps://h:5671//"]\nresult_backend = "rediss://:p@h:6379/0"\n'
        '[tls]\nca_file = "/tls/ca.crt"\ncert_file = "/tls/host.crt"\nkey_file = "/tls/host.key"\n'
    )
    s = load_settings(str(f), environ={})
    assert (s.tls_ca_file, s.tls_cert_file, s.tls_key_file) == ("/tls/ca.crt", "/tls/host.crt", "/tls/host.key")
