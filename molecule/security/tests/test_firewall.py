"""roles/firewall: nftables loads the role's table at boot; only admitted flows pass, the rest is dropped and counted.

The controller (where pytest runs) is the podman network's gateway: converge.yml admits it on
8080 only. Probes are throwaway HTTP listeners started here on 8080, 8081, 9090 and 9101 (in the
admitted range 9100-9102).
"""

import json
import socket

import pytest
from conftest import private_address

TABLE = "celery_fleet"  # roles/firewall/defaults/main.yml
PROBE_PORTS = (8080, 8081, 9090, 9101)


@pytest.fixture(scope="module")
def probes(host):
    """HTTP listeners on every probe port (on all addresses), stopped afterwards."""
    for port in PROBE_PORTS:
        host.run(f"systemd-run --unit=probe-{port} python3 -m http.server --bind 0.0.0.0 {port}")
    for port in PROBE_PORTS:
        host.run(f"timeout 15 sh -c 'until ss -Htln \"sport = :{port}\" | grep -q .; do sleep 0.2; done'")
    yield private_address(host)
    for port in PROBE_PORTS:
        host.run(f"systemctl stop probe-{port}")


def _connects(address: str, port: int, timeout: float = 3.0) -> bool:
    """Whether a TCP connection from the controller to address:port completes within timeout seconds."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def _dropped(host) -> int:
    """Packets counted by the table's counter `dropped`."""
    data = json.loads(host.check_output(f"nft --json list counter inet {TABLE} dropped"))
    return next(item["counter"]["packets"] for item in data["nftables"] if "counter" in item)


def test_nftables_enabled_at_boot_and_includes_the_table(host):
    assert host.service("nftables").is_enabled
    assert host.file("/etc/nftables.conf").contains('^include "/etc/nftables.d/\\*.nft"$')
    assert host.file(f"/etc/nftables.d/{TABLE}.nft").mode == 0o600


def test_input_policy_is_drop(host):
    data = json.loads(host.check_output(f"nft --json list chain inet {TABLE} input"))
    chain = next(item["chain"] for item in data["nftables"] if "chain" in item)
    assert chain["hook"] == "input"
    assert chain["policy"] == "drop"


def test_admitted_port_reachable_from_its_source(probes):
    assert _connects(probes, 8080)


def test_a_port_in_an_admitted_range_reachable(probes):
    assert _connects(probes, 9101)


def test_port_with_no_sources_and_unlisted_port_dropped_and_counted(host, probes):
    before = _dropped(host)
    assert not _connects(probes, 8081)
    assert not _connects(probes, 9090)
    assert _dropped(host) > before


def test_loopback_and_ssh_still_admitted(host, probes):
    assert host.run("python3 -c \"import socket; socket.create_connection(('127.0.0.1', 9090), 3)\"").rc == 0
    assert _connects(probes, 22)


def test_boot_ruleset_loads_the_same_table(host):
    """What nftables.service loads at boot (/etc/nftables.conf) parses and holds the table."""
    assert host.run("nft --check --file /etc/nftables.conf").rc == 0


def test_ipv6_prefix_rendered(host):
    assert host.file(f"/etc/nftables.d/{TABLE}.nft").contains("ip6 saddr { fd00:213::/64 } tcp dport 8080")


def test_vrrp_entry_admits_ip_protocol_112_from_its_source_only(host):
    """A ``proto: vrrp`` entry (keepalived's adverts) renders a port-less rule on IP protocol 112."""
    data = json.loads(host.check_output(f"nft --json list chain inet {TABLE} input"))
    rules = [item["rule"] for item in data["nftables"] if item.get("rule", {}).get("comment") == "probe-vrrp"]
    assert len(rules) == 1, rules
    text = json.dumps(rules[0]["expr"])
    assert '"l4proto"' in text and ("112" in text or '"vrrp"' in text) and "dport" not in text, text
    assert '"saddr"' in text, text
