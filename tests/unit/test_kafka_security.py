"""Security settings reach every client riskstream builds: aiokafka (admin, simulator, demo) and
Faust's worker credentials."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import faust
import pytest

from riskstream.app import broker_credentials
from riskstream.kafka import aiokafka_kwargs
from riskstream.settings import KafkaSettings


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "client.pem", d / "client.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=riskstream-test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_plaintext_has_no_security_options() -> None:
    assert aiokafka_kwargs(KafkaSettings()) == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "PLAINTEXT",
    }
    assert broker_credentials(KafkaSettings()) is None


def test_sasl_ssl_passes_mechanism_user_password_and_mutual_tls(
    tls_files: tuple[Path, Path],
) -> None:
    cert, key = tls_files
    k = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="risk",
        sasl_password="s3cret",
        ssl_cafile=cert,
        ssl_certfile=cert,
        ssl_keyfile=key,
    )
    kw = aiokafka_kwargs(k)
    assert kw["security_protocol"] == "SASL_SSL"
    assert kw["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (kw["sasl_plain_username"], kw["sasl_plain_password"]) == ("risk", "s3cret")
    assert isinstance(kw["ssl_context"], ssl.SSLContext)
    assert kw["ssl_context"].verify_mode is ssl.CERT_REQUIRED
    creds = broker_credentials(k)
    assert isinstance(creds, faust.SASLCredentials)
    assert creds.username == "risk"
    assert creds.password == "s3cret"
    assert creds.ssl_context is not None
    assert "s3cret" not in repr(k)


def test_ssl_only_gives_ssl_credentials(tls_files: tuple[Path, Path]) -> None:
    cert, _ = tls_files
    creds = broker_credentials(KafkaSettings(security_protocol="SSL", ssl_cafile=cert))
    assert isinstance(creds, faust.SSLCredentials)


def test_missing_ca_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        aiokafka_kwargs(KafkaSettings(security_protocol="SSL", ssl_cafile=tmp_path / "nope.pem"))
