"""End-to-end: TLS on every hop between the lab's hosts (issue: security, fleet_tls).

Every socket a host serves beyond loopback speaks TLS with a certificate of the lab's CA for that
address; the plaintext ports are closed; a plaintext client gets no answer from a TLS port; the
brokers and Redis refuse a client without a certificate or with one of another CA, and answer one
of the lab's CA. The probes run on the lab hosts themselves (the firewall admits a host's own
address and each tier's clients), with Python's ssl module and the host's own files
(roles/pki). Read-only: nothing here changes the lab.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e

TLS_DIR = "/etc/celery-fleet/tls"  # inventory/stack/group_vars/all.yml: fleet_tls_*_file
#: Sockets beyond loopback that are not TLS, and why. Only these: the test fails on any other.
NOT_TLS = {
    22: "sshd (SSH is its own encrypted protocol)",
    4369: "epmd, Erlang's port mapper: names and ports only, no TLS in Erlang; brokers only (firewall)",
}

#: Runs on a lab host: connect to (address, port), optionally over TLS (the server's certificate
#: verified for the address against the lab's CA, a client certificate presented if given), send a
#: payload, read the first bytes. Prints {"handshake": bool, "answer": hex, "error": str}.
PROBE = (
    f"CA_FILE = {TLS_DIR + '/ca.crt'!r}\n"
    + r"""
import json, socket, ssl, sys
address, port, tls, cert, key, payload = json.loads(sys.argv[1])
out = {"handshake": False, "answer": "", "error": ""}
try:
    sock = socket.create_connection((address, port), 5)
    sock.settimeout(5)
    if tls:
        ctx = ssl.create_default_context(cafile=CA_FILE)
        if cert:
            ctx.load_cert_chain(cert, key)
        sock = ctx.wrap_socket(sock, server_hostname=address)
        out["handshake"] = True
    sock.sendall(bytes.fromhex(payload))
    out["answer"] = sock.recv(64).hex()
except (OSError, ssl.SSLError) as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""
)

AMQP_HEADER = b"AMQP\x00\x00\x09\x01".hex()
#: connection.start (class 10, method 10) in the broker's first frame.
CONNECTION_START = "000a000a"
REDIS_PING = b"PING\r\n".hex()
HTTP_GET = b"GET / HTTP/1.0\r\n\r\n".hex()
HOST_CERT = (f"{TLS_DIR}/host.crt", f"{TLS_DIR}/host.key")
OTHER_CA_CERT = ("/tmp/e2e-other-ca.crt", "/tmp/e2e-other-ca.key")


def _probe(host, address: str, port: int, *, tls: bool, cert: tuple[str, str] | None = HOST_CERT, payload: str) -> dict:
    """Run :data:`PROBE` on ``host``.

    Returns:
        {"handshake": TLS handshake completed, "answer": the server's first bytes (hex, "" if
        none), "error": the exception, if any}.
    """
    args = json.dumps([address, port, tls, *(cert or ("", "")), payload])
    return json.loads(host.check_output("python3 -c %s %s", PROBE, args))


def _listening_beyond_loopback(host, address: str) -> set[int]:
    ports = set()
    for line in host.check_output("ss -Htln").splitlines():
        local_address, port = line.split()[3].rsplit(":", 1)
        if local_address.strip("[]").split("%")[0] not in ("127.0.0.1", "::1"):
            ports.add(int(port))
    return ports


def test_every_socket_beyond_loopback_speaks_tls_with_the_hosts_certificate(lab):
    """The done-when of the issue: every listening socket is TLS or loopback-only (NOT_TLS lists
    the exceptions and why). A TLS handshake that verifies the server's certificate for the
    address against the lab's CA must succeed on every other port."""
    probed = {}
    for name, address in lab.hosts.items():
        host = lab.host(name)
        for port in sorted(_listening_beyond_loopback(host, address) - set(NOT_TLS)):
            result = _probe(host, address, port, tls=True, payload=HTTP_GET)
            probed[f"{name}:{port}"] = result
            assert result["handshake"], (name, port, result)
    print(json.dumps(sorted(probed)))
    # What the stack serves: AMQPS, HTTPS management and metrics, the Erlang distribution over
    # TLS on each broker; Redis, the API and Flower on the web host.
    broker, web = lab.groups["brokers"][0], lab.groups["producers"][0]
    assert {f"{broker}:{p}" for p in (5671, 15671, 15691, 25672)} <= set(probed)
    assert {f"{web}:{p}" for p in (6379, 8000, 5555)} <= set(probed)


def test_the_plaintext_ports_are_closed(lab):
    for name in lab.groups["brokers"]:
        ports = _listening_beyond_loopback(lab.host(name), lab.hosts[name])
        assert not ports & {5672, 15672, 15692}, (name, sorted(ports))


def test_a_plaintext_client_gets_no_answer_from_a_tls_port(lab):
    broker, web, worker = lab.groups["brokers"][0], lab.groups["producers"][0], lab.groups["workers"][0]
    b, w = lab.hosts[broker], lab.hosts[web]
    client = lab.host(worker)
    amqp = _probe(client, b, 5671, tls=False, payload=AMQP_HEADER)
    assert CONNECTION_START not in amqp["answer"], amqp
    redis = _probe(client, w, 6379, tls=False, payload=REDIS_PING)
    assert not redis["answer"].startswith((b"+PONG".hex(), b"-NOAUTH".hex())), redis
    # The HTTP services, each probed from its own host (its firewall admits its own address).
    for host, address, port in ((web, w, 8000), (web, w, 5555), (broker, b, 15671), (broker, b, 15691)):
        answer = _probe(lab.host(host), address, port, tls=False, payload=HTTP_GET)
        assert not answer["answer"].startswith(b"HTTP/".hex()), (port, answer)


@pytest.fixture(scope="module")
def other_ca_client(lab):
    """A worker holding a self-signed client certificate: one the lab's CA did not sign."""
    host = lab.host(lab.groups["workers"][0])
    host.check_output(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=intruder "
        f"-addext extendedKeyUsage=clientAuth -keyout {OTHER_CA_CERT[1]} -out {OTHER_CA_CERT[0]} 2>/dev/null"
    )
    yield host
    host.run(f"rm -f {' '.join(OTHER_CA_CERT)}")


@pytest.mark.parametrize(
    "group, port, payload, answer",
    [("brokers", 5671, AMQP_HEADER, CONNECTION_START), ("backends", 6379, REDIS_PING, b"-NOAUTH".hex())],
    ids=["amqps", "redis"],
)
def test_a_client_certificate_of_the_lab_ca_is_required(lab, other_ca_client, group, port, payload, answer):
    """The host's own certificate gets the protocol's first answer (AMQP connection.start, Redis's
    NOAUTH for a client without the password); no certificate, or one of another CA, gets none."""
    address = lab.hosts[lab.groups[group][0]]
    own = _probe(other_ca_client, address, port, tls=True, payload=payload)
    assert own["answer"].startswith(answer) or answer in own["answer"], own
    for cert in (None, OTHER_CA_CERT):
        refused = _probe(other_ca_client, address, port, tls=True, cert=cert, payload=payload)
        assert answer not in refused["answer"], (cert, refused)
