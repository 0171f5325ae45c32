"""roles/broker_proxy: a local HAProxy on loopback that hands AMQP clients to live nodes only."""

from conftest import assert_running_and_enabled

# AMQP 0-9-1 protocol header; a broker answers with connection.start (class 10, method 10).
AMQP_HEADER = r"AMQP\x00\x00\x09\x01"


def test_haproxy_running_and_enabled(host):
    assert_running_and_enabled(host, "haproxy")


def test_listens_on_loopback_only(host):
    assert host.socket("tcp://127.0.0.1:5672").is_listening
    assert not host.socket("tcp://0.0.0.0:5672").is_listening
    assert not host.socket("tcp://:::5672").is_listening


def test_configuration_is_valid_and_names_every_backend(host):
    assert host.run("haproxy -c -f /etc/haproxy/haproxy.cfg").rc == 0
    conf = host.file("/etc/haproxy/haproxy.cfg")
    # TLS to the nodes (the stack's fleet_tls): each node's certificate checked for its name, the
    # host's own presented.
    tls = r" ssl verify required ca-file /etc/celery-fleet/tls/ca\.crt crt /etc/celery-fleet/tls/host\.crt"
    assert conf.contains(rf"^    server molecule-web [0-9.]*:5671 check{tls} verifyhost molecule-web$")
    assert conf.contains(rf"^    server dead 127\.0\.0\.9:5671 check{tls} verifyhost dead$")
    assert conf.contains("tcp-check expect binary 000a000a")
    assert conf.contains("on-marked-down shutdown-sessions")
    # The stack's majority check: the node's own count of unreachable peers, from its metrics;
    # a cluster of one fails it with any peer unreachable.
    assert conf.contains("^    tcp-check connect port 15691 ssl$")
    assert "rstring '\\nrabbitmq_unreachable_cluster_peers_count ([1-9]|[0-9][0-9]+)\\n'" in conf.content_string
    assert conf.contains("use_backend brokers_answering if")


def _server_states(host) -> dict:
    """Map "backend/server" -> HAProxy operational state (0 DOWN, 2 UP) from its runtime API."""
    out = host.check_output('echo "show servers state" | socat stdio /run/haproxy/admin.sock')
    states = {}
    for line in out.splitlines()[2:]:
        fields = line.split()
        if len(fields) > 5:
            states[f"{fields[1]}/{fields[3]}"] = int(fields[5])
    return states


def test_live_node_passes_the_majority_check_and_the_dead_one_fails(host):
    # The check reads the live node's whole /metrics (tune.bufsize); a step that failed (no
    # answer, a bad regex) would put the live node DOWN too, clients then reaching it only
    # through the fallback backend.
    states = _server_states(host)
    assert states["brokers/molecule-web"] == 2, states
    assert states["brokers/dead"] == 0, states


def test_amqp_client_reaches_a_live_broker_through_the_proxy(host):
    # Several connections: with leastconn, a dead node still in rotation would refuse some.
    for _ in range(5):
        out = host.check_output(
            "python3 -c \"import socket; s=socket.create_connection(('127.0.0.1', 5672), 5); "
            f"s.sendall(b'{AMQP_HEADER}'); print(s.recv(7).hex())\""
        )
        # Frame type 1 (method) on channel 0: connection.start from RabbitMQ.
        assert out.startswith("010000"), out


def test_dead_backend_marked_down_by_the_amqp_check(host):
    # journald keeps HAProxy's state changes (log /dev/log).
    logs = host.check_output("journalctl -u haproxy --no-pager -o cat")
    assert "brokers/dead is DOWN" in logs
    assert "brokers/molecule-web is DOWN" not in logs


def test_drop_in_clears_the_chroot_mount(host):
    drop_in = host.file("/etc/systemd/system/haproxy.service.d/no-chroot.conf")
    assert drop_in.contains("^BindReadOnlyPaths=$")
    assert "/dev/log" not in host.check_output("systemctl show haproxy -p BindReadOnlyPaths")


def test_haproxy_stops_after_supervisord_at_a_shutdown(host):
    """Ordered before supervisor.service, so systemd stops it after: the programs' in-flight
    publishes and acks still reach a broker (roles/broker_proxy, clients-first.conf)."""
    assert "supervisor.service" in host.check_output("systemctl show haproxy -p Before").split("=", 1)[1].split()
    assert "haproxy.service" in host.check_output("systemctl show supervisor -p After").split("=", 1)[1].split()
