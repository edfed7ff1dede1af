"""Kafka client options from settings, shared by every client riskstream creates."""

from __future__ import annotations

import ssl
from typing import Any

from riskstream.settings import KafkaSettings, SecurityProtocol


def ssl_context(k: KafkaSettings) -> ssl.SSLContext | None:
    if k.security_protocol not in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL):
        return None
    ctx = ssl.create_default_context(cafile=str(k.ssl_cafile) if k.ssl_cafile else None)
    if k.ssl_certfile:
        ctx.load_cert_chain(str(k.ssl_certfile), str(k.ssl_keyfile) if k.ssl_keyfile else None)
    return ctx


def aiokafka_kwargs(k: KafkaSettings) -> dict[str, Any]:
    """Connection options for aiokafka producers, consumers and the admin client."""
    out: dict[str, Any] = {
        "bootstrap_servers": k.bootstrap_servers,
        "security_protocol": k.security_protocol.value,
    }
    ctx = ssl_context(k)
    if ctx is not None:
        out["ssl_context"] = ctx
    if k.security_protocol in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL):
        out["sasl_mechanism"] = k.sasl_mechanism
        out["sasl_plain_username"] = k.sasl_username
        out["sasl_plain_password"] = k.sasl_password.get_secret_value() if k.sasl_password else None
    return out
