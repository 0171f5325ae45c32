"""End-to-end: the lab's hosts run the current platform (Debian 13, RabbitMQ 4.0, Redis 8,
Python 3.13) and the cluster uses no deprecated RabbitMQ feature, every stable feature flag is
on, and the metadata store is the one the inventory asks for."""

from __future__ import annotations

import json

import pytest

from tests.static.ansible_vars import resolve

from .conftest import INVENTORY

pytestmark = pytest.mark.e2e


def test_every_lab_host_runs_debian_13(lab):
    for name in lab.hosts:
        host = lab.host(name)
        assert host.system_info.distribution == "debian", name
        assert host.system_info.codename == "trixie", name


def test_every_broker_runs_rabbitmq_4_0(lab):
    for name in lab.groups["brokers"]:
        version = lab.host(name).check_output("rabbitmqctl version").strip()
        assert version.startswith("4.0."), (name, version)


def test_the_result_backend_runs_redis_8(lab):
    out = lab.host(lab.groups["backends"][0]).check_output("redis-server --version")
    assert " v=8." in out, out


def test_the_app_runs_on_the_hosts_python_3_13(lab):
    for name in lab.groups["producers"] + lab.groups["workers"]:
        out = lab.app_python(name, "-c 'import sys, markupsafe._speedups; print(sys.version_info[:2])'")
        assert out.strip() == "(3, 13)", (name, out)


def test_no_deprecated_feature_is_in_use(lab):
    """RabbitMQ 4.0 lists a deprecated feature as used as soon as one queue or setting needs it
    (transient non-exclusive queues, classic mirroring, global QoS...); Celery's pidbox, reply and
    event queues are declared exclusive for that reason (fleet.celeryconfig)."""
    for name in lab.groups["brokers"]:
        used = json.loads(lab.host(name).check_output("rabbitmqctl list_deprecated_features --used --formatter json"))
        assert used == [], (name, used)


def test_every_stable_feature_flag_is_enabled(lab):
    broker = lab.host(lab.groups["brokers"][0])
    flags = json.loads(broker.check_output("rabbitmqctl list_feature_flags name state stability --formatter json"))
    off = [f["name"] for f in flags if f["stability"] != "experimental" and f["state"] != "enabled"]
    assert off == []


def test_the_metadata_store_is_the_one_asked_for(lab):
    # The role's default, auto, is Khepri on Debian 13's RabbitMQ 4.0.
    stores = resolve(INVENTORY, "brokers", "rabbitmq_metadata_store | default('auto')")
    for name in lab.groups["brokers"]:
        store = {"auto": "khepri"}.get(stores[name], stores[name])
        flags = json.loads(lab.host(name).check_output("rabbitmqctl list_feature_flags name state --formatter json"))
        khepri = {f["name"]: f["state"] for f in flags}["khepri_db"]
        assert khepri == ("enabled" if store == "khepri" else "disabled"), (name, store, khepri)
