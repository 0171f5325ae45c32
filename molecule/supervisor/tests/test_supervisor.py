"""roles/supervisor: supervisord runs, and only root and the operators group can drive it."""

import re

from conftest import assert_running_and_enabled

SOCKET = "/run/supervisor.sock"


def test_supervisord_running_and_enabled(host):
    assert_running_and_enabled(host, "supervisor")


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


def test_programs_given_as_data_run_from_one_file(host):
    conf = host.file("/etc/supervisor/conf.d/programs.conf")
    assert conf.user == "root" and conf.mode == 0o644
    assert conf.contains("Ansible managed")
    assert conf.contains(r"^\[group:demo\]$") and conf.contains("^programs=sleeper$")
    status = host.check_output("supervisorctl status")
    assert re.search(r"^demo:sleeper\s+RUNNING", status, re.M), status
    assert re.search(r"^echoer\s+RUNNING", status, re.M), status


def test_a_percent_sign_reaches_the_program_unexpanded(host):
    log = host.file("/var/log/supervisor/echoer.log")
    assert log.contains("^100% hello%world$")
    pid = host.check_output("supervisorctl pid echoer")
    assert host.check_output(f"ps -o user= -p {pid}").strip() == "nobody"
