"""roles/pki: the host holds the kit's CA, its own certificate (its address and names as SANs) and key.

They serve TLS that a client trusting that CA accepts and a client trusting another CA refuses;
side_effect.yml renewed the certificate.
"""

import pytest
from conftest import private_address

DIR = "/etc/celery-fleet/tls"  # roles/pki/defaults/main.yml


def test_files_and_who_may_read_the_key(host):
    assert host.file(DIR).mode == 0o750
    assert host.file(f"{DIR}/ca.crt").mode == 0o644
    assert host.file(f"{DIR}/host.crt").mode == 0o644
    key = host.file(f"{DIR}/host.key")
    assert (key.user, key.group, key.mode) == ("root", "ssl-cert", 0o640)


def test_certificate_chains_to_the_ca_with_the_hosts_names(host):
    assert host.run(f"openssl verify -CAfile {DIR}/ca.crt {DIR}/host.crt").rc == 0
    text = host.check_output(f"openssl x509 -in {DIR}/host.crt -noout -ext subjectAltName,extendedKeyUsage")
    assert f"IP Address:{private_address(host)}" in text
    assert "DNS:molecule-security" in text
    assert "TLS Web Server Authentication" in text and "TLS Web Client Authentication" in text


def test_the_system_trust_store_holds_the_ca(host):
    """pki_trust_system: curl and Python's default context on the host trust the kit's CA."""
    trusted = host.file("/usr/local/share/ca-certificates/celery-fleet-ca.crt")
    assert trusted.content == host.file(f"{DIR}/ca.crt").content
    # No -CAfile: only the system store (/etc/ssl/certs) can make this pass.
    assert host.run(f"openssl verify {DIR}/host.crt").rc == 0


def test_key_belongs_to_the_certificate(host):
    cert = host.check_output(f"openssl x509 -in {DIR}/host.crt -noout -pubkey")
    key = host.check_output(f"openssl pkey -in {DIR}/host.key -pubout")
    assert cert == key


def test_side_effect_renewed_the_certificate(host):
    before = host.file("/root/pki-serial-before").content_string.strip()
    after = host.check_output(f"openssl x509 -in {DIR}/host.crt -noout -serial")
    assert before.startswith("serial=") and after != before


@pytest.fixture(scope="module")
def tls_server(host):
    """openssl s_server on 9443 (loopback and the private address) with the host's certificate."""
    host.run(
        "systemd-run --unit=pki-probe openssl s_server -accept 9443 -www -quiet"
        f" -cert {DIR}/host.crt -key {DIR}/host.key"
    )
    host.run("timeout 15 sh -c 'until ss -Htln \"sport = :9443\" | grep -q .; do sleep 0.2; done'")
    yield private_address(host)
    host.run("systemctl stop pki-probe")


def test_a_client_trusting_the_ca_verifies_the_hosts_address(host, tls_server):
    out = host.run(
        f"openssl s_client -connect {tls_server}:9443 -CAfile {DIR}/ca.crt -verify_return_error"
        f" -verify_ip {tls_server} </dev/null"
    )
    assert out.rc == 0, out.stderr
    assert "Verify return code: 0 (ok)" in out.stdout


def test_a_client_trusting_another_ca_refuses_the_host(host, tls_server):
    host.run_test(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=other"
        " -keyout /root/other-ca.key -out /root/other-ca.crt"
    )
    # Only the other CA: not the system store either, which trusts the kit's CA (pki_trust_system).
    out = host.run(
        f"openssl s_client -connect {tls_server}:9443 -CAfile /root/other-ca.crt -no-CApath -no-CAstore"
        " -verify_return_error </dev/null"
    )
    # Refused by verification: the kit's CA is unknown to it ("unable to get local issuer"), or,
    # when the server sends the CA along (s_server does once the host's store holds it), untrusted
    # ("self-signed certificate in certificate chain").
    assert out.rc != 0
    assert "certificate verify failed" in out.stderr
    assert "Verify return code: 0 (ok)" not in out.stdout
