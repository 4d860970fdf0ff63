"""Kafka client factories: durable producers (acks=all, idempotent) and consumers that commit by hand, all
with the security settings (TLS, mTLS, SASL PLAIN / SCRAM) of `KafkaSettings`."""

from __future__ import annotations

import ssl
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

from closeloop.contracts.base import Envelope
from closeloop.contracts.codec import cloudevents_headers, encode, kafka_key
from closeloop.settings import KafkaSettings


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context for SSL / SASL_SSL: verifies the broker against `ssl_cafile` (or the system trust
    store) and its host name, and presents the client certificate when one is configured (mTLS)."""
    if not settings.uses_tls:
        return None
    password = settings.ssl_key_password.get_secret_value() if settings.ssl_key_password else None
    context: ssl.SSLContext = create_ssl_context(
        cafile=settings.ssl_cafile,
        certfile=settings.ssl_certfile,
        keyfile=settings.ssl_keyfile,
        password=password,
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = settings.ssl_check_hostname
    return context


def client_options(settings: KafkaSettings, client_suffix: str) -> dict[str, Any]:
    """Connection and security options every aiokafka client of closeloop uses."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap,
        "client_id": f"{settings.client_id}-{client_suffix}",
        "request_timeout_ms": settings.request_timeout_ms,
        "security_protocol": settings.security_protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.sasl_mechanism:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = settings.sasl_password.get_secret_value() if settings.sasl_password else None
    return options


def faust_credentials(settings: KafkaSettings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    """The same security settings as faust's `broker_credentials`."""
    context = ssl_context(settings)
    if settings.sasl_mechanism:
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value() if settings.sasl_password else None,
            mechanism=settings.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def producer(settings: KafkaSettings, client_suffix: str = "producer") -> AIOKafkaProducer:
    """A producer whose sends are durable once acknowledged: acks=all and idempotence on."""
    return AIOKafkaProducer(
        **client_options(settings, client_suffix),
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.linger_ms,
    )


def consumer(settings: KafkaSettings, group_id: str, *topics: str, client_suffix: str = "consumer") -> AIOKafkaConsumer:
    """A group consumer that never auto-commits: offsets are committed only after the effect."""
    return AIOKafkaConsumer(
        *topics,
        **client_options(settings, client_suffix),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )


def admin_client(settings: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(settings, "admin"))


async def publish(producer_: AIOKafkaProducer, topic: str, event: Envelope) -> None:
    """Send one event and wait until the broker has it durably (all in-sync replicas)."""
    await producer_.send_and_wait(topic, encode(event), key=kafka_key(event), headers=cloudevents_headers(event))


async def publish_many(producer_: AIOKafkaProducer, topic: str, events: list[Envelope]) -> None:
    """Send a batch, then wait for every acknowledgement; raises if any send failed."""
    futures = [await producer_.send(topic, encode(e), key=kafka_key(e), headers=cloudevents_headers(e)) for e in events]
    for future in futures:
        await future
