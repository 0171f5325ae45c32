"""The Vagrantfile states no topology of its own: machines come from inventory/vagrant/hosts.yml."""

import ipaddress
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
VAGRANTFILE = ROOT / "vagrant" / "Vagrantfile"
HOSTS = ROOT / "inventory" / "vagrant" / "hosts.yml"


def _vagrant_hosts() -> dict[str, dict]:
    groups = yaml.safe_load(HOSTS.read_text())["all"]["children"]["vagrant"]["children"]
    hosts: dict[str, dict] = {}
    for group in groups.values():
        for name, host_vars in (group.get("hosts") or {}).items():
            hosts.setdefault(name, {}).update(host_vars or {})
    return hosts


def test_the_vagrantfile_names_no_address_or_machine():
    # Code only: the header comment may name the machines for the reader.
    text = "\n".join(line for line in VAGRANTFILE.read_text().splitlines() if not line.lstrip().startswith("#"))
    # Loopback (where Vagrant forwards each machine's SSH port) is no machine's address.
    assert not [a for a in re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text) if a != "127.0.0.1"]
    for name in _vagrant_hosts():
        assert not re.search(rf'"{name}"|\b{name}\b', text), name


def test_every_vagrant_machine_has_an_address_in_the_docker_network():
    group_vars = yaml.safe_load((HOSTS.parent / "group_vars" / "all.yml").read_text())
    subnet = ipaddress.ip_network(group_vars["vagrant_docker_network_subnet"])
    hosts = _vagrant_hosts()
    assert set(hosts) == {"broker1", "broker2", "broker3", "web1", "worker1", "worker2"}
    addresses = [ipaddress.ip_address(h["ansible_host"]) for h in hosts.values()]
    assert all(a in subnet for a in addresses)
    assert len(set(addresses)) == len(addresses)
