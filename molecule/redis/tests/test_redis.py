"""roles/redis: Redis runs, binds loopback and the private address only, and demands a password;
the replica follows the master, and the server cannot rewrite the role's files; a restarted
server asks the Sentinels what to start as."""

import time

import testinfra
from conftest import assert_running_and_enabled, private_address

PASSWORD = "molecule-redis-password"  # set in converge.yml


def test_redis_running_and_enabled(host):
    assert_running_and_enabled(host, "redis-server")


def test_bound_to_loopback_and_private_address_only(host):
    assert host.socket("tcp://127.0.0.1:6379").is_listening
    assert host.socket(f"tcp://{private_address(host)}:6379").is_listening
    assert not host.socket("tcp://0.0.0.0:6379").is_listening
    assert not host.socket("tcp://:::6379").is_listening


def test_unauthenticated_commands_refused(host):
    out = host.run(f"redis-cli -h {private_address(host)} ping")
    assert "NOAUTH" in out.stdout + out.stderr


def test_password_accepted(host):
    out = host.check_output(f"REDISCLI_AUTH={PASSWORD} redis-cli -h {private_address(host)} ping")
    assert out.strip() == "PONG"


def test_config_values_live(host):
    get = f"REDISCLI_AUTH={PASSWORD} redis-cli -h 127.0.0.1 config get"
    assert host.check_output(f"{get} maxmemory").split()[1] == str(64 * 1024 * 1024)
    assert host.check_output(f"{get} maxmemory-policy").split()[1] == "noeviction"
    assert host.check_output(f"{get} appendonly").split()[1] == "yes"
    assert host.check_output(f"{get} appendfsync").split()[1] == "everysec"
    assert host.check_output(f"{get} protected-mode").split()[1] == "yes"


def test_config_file_readable_by_redis_only(host):
    conf = host.file("/etc/redis/redis.conf")
    assert conf.user == "redis"
    assert conf.group == "redis"
    assert conf.mode == 0o640


def test_password_only_in_its_own_file(host):
    """The password lives in the included auth file (a new one is applied live, without a
    restart); redis.conf itself holds no secret."""
    auth = host.file("/etc/redis/redis-auth.conf")
    assert auth.user == "redis"
    assert auth.group == "redis"
    assert auth.mode == 0o640
    assert auth.content_string.strip() == f"requirepass {PASSWORD}\nmasterauth {PASSWORD}"
    conf = host.file("/etc/redis/redis.conf").content_string
    assert "include /etc/redis/redis-auth.conf" in conf
    assert PASSWORD not in conf


def _cli(host, command: str) -> str:
    """Run a redis-cli ``command`` on ``host``'s loopback with the password; its output."""
    return host.check_output(f"REDISCLI_AUTH={PASSWORD} redis-cli -h 127.0.0.1 {command}")


def test_memory_alarm_timer_active_and_enabled(host):
    timer = host.service("redis-memory-alarm.timer")
    assert timer.is_running and timer.is_enabled


ALARM_JOURNAL = "journalctl -o cat _SYSTEMD_UNIT=redis-memory-alarm.service"


def _alarm_check(host):
    """Run one memory check now (what the timer starts).

    Returns:
        ``(run, line)``: ``systemctl start``'s result and the line the check logged.

    Raises:
        AssertionError: the check's line did not reach the journal within 10 s.
    """
    host.run("systemctl reset-failed redis-memory-alarm.service")
    before = len(host.check_output(ALARM_JOURNAL).splitlines())
    run = host.run("systemctl start redis-memory-alarm.service")
    deadline = time.monotonic() + 10
    while len(lines := host.check_output(ALARM_JOURNAL).splitlines()) <= before:
        assert time.monotonic() < deadline, "the memory check logged nothing"
        time.sleep(0.2)
    return run, lines[-1]


def test_memory_alarm_fails_at_the_threshold_and_clears_below_it(host):
    """noeviction refuses writes at maxmemory: the alarm's unit passes with the server far below
    80 % of it, fails (and logs a warning) when maxmemory is lowered live to just above what the
    server uses, and passes again once maxmemory is back."""
    run, journal = _alarm_check(host)
    assert run.rc == 0, run.stderr
    assert "% of maxmemory 67108864 bytes (alarm at 80 %)" in journal
    used = int(_cli(host, "info memory").split("used_memory:")[1].split()[0])
    try:
        assert _cli(host, f"config set maxmemory {used * 10 // 9}").strip() == "OK"
        run, journal = _alarm_check(host)
        assert run.rc != 0
        assert host.run("systemctl is-failed redis-memory-alarm.service").stdout.strip() == "failed"
        assert "ALARM used_memory" in journal
        assert "ALARM used_memory" in host.check_output(f"{ALARM_JOURNAL} -p warning")
    finally:
        _cli(host, f"config set maxmemory {64 * 1024 * 1024}")
    run, journal = _alarm_check(host)
    assert run.rc == 0, run.stderr
    assert host.run("systemctl is-failed redis-memory-alarm.service").stdout.strip() != "failed"


def test_replica_follows_the_master():
    """molecule-redis-replica replicates molecule-redis over its private address, its link up,
    read-only; a key written on the master is read on the replica."""
    master = testinfra.get_host("podman://molecule-redis")
    replica = testinfra.get_host("podman://molecule-redis-replica")
    assert "role:master" in _cli(master, "info replication")
    info = _cli(replica, "info replication")
    assert "role:slave" in info
    assert f"master_host:{private_address(master)}" in info
    assert "master_link_status:up" in info
    key = f"molecule-replication-{time.time_ns()}"
    assert _cli(master, f"set {key} 1 EX 60").strip() == "OK"
    deadline = time.monotonic() + 10
    while _cli(replica, f"get {key}").strip() != "1":
        assert time.monotonic() < deadline, f"{key} written on the master never reached the replica"
        time.sleep(0.2)
    refused = replica.run(f"REDISCLI_AUTH={PASSWORD} redis-cli -h 127.0.0.1 set {key} 2")
    assert "READONLY" in refused.stdout + refused.stderr


def test_server_cannot_rewrite_the_role_files(host):
    """CONFIG REWRITE (what Sentinel sends after a failover) fails: /etc/redis is read-only for the
    server, so the role's redis.conf and replication file stay as written."""
    before = host.file("/etc/redis/redis.conf").content_string
    out = host.run(f"REDISCLI_AUTH={PASSWORD} redis-cli -h 127.0.0.1 config rewrite")
    assert "ERR" in out.stdout + out.stderr
    assert host.file("/etc/redis/redis.conf").content_string == before


def _sentinel(host, *command: str) -> str:
    return host.check_output(f"REDISCLI_AUTH={PASSWORD} redis-cli -h 127.0.0.1 -p 26379 " + " ".join(command))


def test_sentinel_running_and_enabled_on_its_own_state_file(host):
    assert_running_and_enabled(host, "redis-sentinel")
    state = host.file("/etc/redis/sentinel/sentinel.conf")
    assert state.user == "redis" and state.mode == 0o640
    assert state.contains("^sentinel monitor fleet ")
    # What the role owns, recorded without passwords.
    settings = host.file("/etc/redis/sentinel-settings.conf")
    assert settings.user == "root" and not settings.contains(PASSWORD)


def test_sentinel_bound_to_loopback_and_private_address_and_demands_the_password(host):
    assert host.socket("tcp://127.0.0.1:26379").is_listening
    assert host.socket(f"tcp://{private_address(host)}:26379").is_listening
    assert not host.socket("tcp://0.0.0.0:26379").is_listening
    out = host.run(f"redis-cli -h {private_address(host)} -p 26379 SENTINEL masters")
    assert "NOAUTH" in out.stdout + out.stderr


def test_sentinel_names_the_master_and_sees_the_replica_and_its_peer(host):
    master = testinfra.get_host("podman://molecule-redis")
    assert _sentinel(host, "SENTINEL get-master-addr-by-name fleet").split() == [private_address(master), "6379"]
    fields = _sentinel(host, "SENTINEL master fleet").split()
    state = dict(zip(fields[::2], fields[1::2], strict=True))
    assert state["flags"] == "master"
    assert state["num-other-sentinels"] == "1"
    assert state["quorum"] == "2"
    deadline = time.monotonic() + 30  # Sentinel learns replicas from the master's INFO every 10 s
    while _sentinel(host, "SENTINEL replicas fleet").count("role-reported") < 1 and time.monotonic() < deadline:
        time.sleep(1)
    assert "slave" in _sentinel(host, "SENTINEL replicas fleet")


def test_a_restarted_replica_asks_the_sentinels_and_starts_as_the_replica_they_name():
    """Before each start the server asks the Sentinels which backend is the master
    (redis-follow-sentinels.sh, ExecStartPre) and starts as its replica: a returning old master
    never starts as a master. Last in the file: it restarts the replica, then waits until its link
    is up again."""
    master = testinfra.get_host("podman://molecule-redis")
    replica = testinfra.get_host("podman://molecule-redis-replica")
    since = replica.check_output("date +%s")
    replica.check_output("systemctl restart redis-server")
    journal = replica.check_output(f"journalctl -u redis-server --since @{since} --no-pager")
    said = f"the Sentinels name {private_address(master)}:6379 the master of fleet: starting as its replica"
    assert said in journal, journal
    env = replica.file("/run/redis/follow-sentinels.env").content_string.strip()
    assert env == f'REDIS_FOLLOW="--replicaof {private_address(master)} 6379"'
    deadline = time.monotonic() + 30
    while "master_link_status:up" not in _cli(replica, "info replication"):
        assert time.monotonic() < deadline, "the restarted replica's link to the master never came up"
        time.sleep(0.5)
