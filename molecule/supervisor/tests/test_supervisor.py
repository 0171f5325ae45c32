"""roles/supervisor: supervisord runs, and only root and the operators group can drive it."""

SOCKET = "/run/supervisor.sock"


def test_supervisord_running_and_enabled(host):
    service = host.service("supervisor")
    assert service.is_running
    assert service.is_enabled


def test_socket_owned_by_root_and_operators_group_not_world_writable(host):
    sock = host.file(SOCKET)
    assert sock.is_socket
    assert sock.user == "root"
    assert sock.group == "supervisor"
    assert sock.mode == 0o770


def test_operator_can_run_supervisorctl(host):
    assert "supervisor" in host.user("operator1").groups
    result = host.run("runuser -u operator1 -- supervisorctl -c /etc/supervisor/supervisord.conf pid")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip().isdigit()


def test_other_accounts_are_refused(host):
    result = host.run("runuser -u bystander -- supervisorctl -c /etc/supervisor/supervisord.conf pid")
    assert result.rc != 0
    assert "Permission denied" in result.stdout + result.stderr


def test_config_values(host):
    conf = host.file("/etc/supervisor/supervisord.conf")
    assert conf.user == "root"
    assert conf.mode == 0o644
    assert conf.contains("^loglevel=info$")
    assert conf.contains(r"^files = /etc/supervisor/conf\.d/\*\.conf$")
    assert host.file("/etc/supervisor/conf.d").is_directory
