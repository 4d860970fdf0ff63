"""Settings -> aiokafka options / ssl_context / faust broker_credentials: one mapping, checked without a
broker (tests/tls runs it against the local broker's TLS listeners)."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import ValidationError

from closeloop.kafka import client_options, faust_credentials, ssl_context
from closeloop.settings import KafkaSettings

# Explicit values so the state folder's env file cannot change what is tested.
PLAIN: dict[str, Any] = {
    "bootstrap": "broker:9093",
    "security_protocol": "PLAINTEXT",
    "sasl_mechanism": None,
    "sasl_username": None,
    "sasl_password": None,
    "ssl_cafile": None,
    "ssl_certfile": None,
    "ssl_keyfile": None,
    "ssl_key_password": None,
}


def settings(**overrides: Any) -> KafkaSettings:
    return KafkaSettings(**{**PLAIN, **overrides})


def scram(**overrides: Any) -> KafkaSettings:
    values = {"security_protocol": "sasl_ssl", "sasl_mechanism": "scram-sha-512", "sasl_username": "closeloop"}
    return settings(**{**values, "sasl_password": "s3cret", **overrides})


@pytest.fixture(scope="module")
def client_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate and key (openssl), as a client would present for mTLS."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "client.pem", folder / "client.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=closeloop-test"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_plaintext_has_no_tls_and_no_sasl() -> None:
    options = client_options(settings(), "x")
    assert options["security_protocol"] == "PLAINTEXT"
    assert "ssl_context" not in options
    assert "sasl_mechanism" not in options
    assert faust_credentials(settings()) is None


def test_sasl_ssl_scram_verifies_the_broker_and_sends_the_credentials() -> None:
    options = client_options(scram(), "x")
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert (options["security_protocol"], options["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("closeloop", "s3cret")


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_faust_gets_the_same_settings_as_the_aiokafka_clients(mechanism: str) -> None:
    ours = scram(sasl_mechanism=mechanism)
    credentials = faust_credentials(ours)
    assert isinstance(credentials, faust.SASLCredentials)
    faust_options = credentials_to_aiokafka_auth(credentials)  # what faust hands to aiokafka
    options = client_options(ours, "x")
    for field in ("security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password"):
        assert faust_options[field] == options[field]
    assert isinstance(faust_options["ssl_context"], ssl.SSLContext)


def test_sasl_without_tls_keeps_the_protocol() -> None:
    ours = settings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="u", sasl_password="p")
    assert "ssl_context" not in client_options(ours, "x")
    credentials = faust_credentials(ours)
    assert credentials is not None
    assert credentials_to_aiokafka_auth(credentials)["security_protocol"] == "SASL_PLAINTEXT"


def test_mtls_presents_the_client_certificate(client_cert: tuple[Path, Path]) -> None:
    cert, key = client_cert
    ours = settings(security_protocol="SSL", ssl_cafile=cert, ssl_certfile=cert, ssl_keyfile=key)
    context = ssl_context(ours)
    assert context is not None
    assert context.get_ca_certs()[0]["subject"] == ((("commonName", "closeloop-test"),),)
    credentials = faust_credentials(ours)
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials_to_aiokafka_auth(credentials)["security_protocol"] == "SSL"


def test_a_key_that_does_not_match_is_refused_at_start(client_cert: tuple[Path, Path], tmp_path: Path) -> None:
    cert, _ = client_cert
    other = tmp_path / "other.key"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-out", str(other)], check=True, capture_output=True)
    with pytest.raises(ssl.SSLError):
        ssl_context(settings(security_protocol="SSL", ssl_certfile=cert, ssl_keyfile=other))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"security_protocol": "SASL_SSL"}, "needs sasl_mechanism"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"}, "needs sasl_mechanism"),
        ({"sasl_mechanism": "PLAIN"}, "security_protocol is PLAINTEXT"),
        ({"security_protocol": "SSL", "ssl_certfile": "/c.pem"}, "go together"),
        ({"ssl_cafile": "/ca.pem"}, "TLS files are set"),
        ({"security_protocol": "TLS"}, "security_protocol"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI", "sasl_username": "u", "sasl_password": "p"},
         "sasl_mechanism"),
    ],
)  # fmt: skip
def test_inconsistent_settings_stop_the_service_at_start(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        settings(**values)
