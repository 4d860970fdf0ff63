"""Kafka security end to end against the local broker's TLS listeners (`make test-tls` starts them and
runs these; deploy/local/kafka_tls.sh): SASL_SSL with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN, and mTLS,
through closeloop's own producer, consumer, admin client and faust's producer. Wrong credentials, a
missing client certificate and an unknown CA are refused."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import faust
import pytest
from aiokafka.errors import KafkaConnectionError
from tests.support.infra import _read_env_file

from closeloop import kafka
from closeloop.settings import KafkaSettings, state_dir
from closeloop.topics import TopicSpec, ensure_topics

pytestmark = pytest.mark.integration

NO_SASL: dict[str, Any] = {"sasl_mechanism": None, "sasl_username": None, "sasl_password": None}


def tls_env() -> dict[str, str]:
    path = state_dir() / "env.tls"
    assert path.exists(), f"{path} is missing: run these through `make test-tls` (CLOSELOOP_KAFKA_TLS=1)"
    return _read_env_file(path)


def sasl_ssl(mechanism: str, **overrides: Any) -> KafkaSettings:
    env = tls_env()
    values: dict[str, Any] = {
        "bootstrap": env["CLOSELOOP_KAFKA_BOOTSTRAP"],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": mechanism,
        "sasl_username": env["CLOSELOOP_KAFKA_SASL_USERNAME"],
        "sasl_password": env["CLOSELOOP_KAFKA_SASL_PASSWORD"],
        "ssl_cafile": env["CLOSELOOP_KAFKA_SSL_CAFILE"],
        "ssl_certfile": None,
        "ssl_keyfile": None,
    }
    return KafkaSettings(**{**values, **overrides})


def mtls(*, with_certificate: bool = True) -> KafkaSettings:
    env = tls_env()
    return KafkaSettings(
        bootstrap=env["CLOSELOOP_KAFKA_MTLS_BOOTSTRAP"],
        security_protocol="SSL",
        ssl_cafile=env["CLOSELOOP_KAFKA_SSL_CAFILE"],
        ssl_certfile=env["CLOSELOOP_KAFKA_MTLS_CERTFILE"] if with_certificate else None,
        ssl_keyfile=env["CLOSELOOP_KAFKA_MTLS_KEYFILE"] if with_certificate else None,
        **NO_SASL,
    )


async def round_trip(settings: KafkaSettings, values: list[bytes]) -> list[bytes]:
    """Create a topic, send `values` with the durable producer, read them back with a group consumer."""
    topic = f"tls-{uuid.uuid4().hex[:10]}"
    await ensure_topics(settings, [TopicSpec(topic, retention_ms=3_600_000, has_dlq=False)], partitions=1)
    producer = kafka.producer(settings, client_suffix="tls-test")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()
    return await read_back(settings, topic, len(values))


async def read_back(settings: KafkaSettings, topic: str, count: int) -> list[bytes]:
    consumer = kafka.consumer(settings, f"{topic}-group", topic, client_suffix="tls-test")
    await consumer.start()
    received: list[bytes] = []
    try:
        async with asyncio.timeout(60):
            while len(received) < count:
                batches = await consumer.getmany(timeout_ms=500)
                received += [m.value for msgs in batches.values() for m in msgs if m.value is not None]
    finally:
        await consumer.stop()
    return received


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(lambda: sasl_ssl("SCRAM-SHA-512"), id="sasl_ssl-scram-sha-512"),
        pytest.param(lambda: sasl_ssl("SCRAM-SHA-256"), id="sasl_ssl-scram-sha-256"),
        pytest.param(lambda: sasl_ssl("PLAIN"), id="sasl_ssl-plain"),
        pytest.param(mtls, id="ssl-mtls"),
    ],
)
async def test_produce_and_consume_through_a_secured_listener(settings: Any) -> None:
    values = [f"v{i}".encode() for i in range(5)]
    assert await round_trip(settings(), values) == values


async def test_the_faust_app_credentials_reach_the_broker() -> None:
    settings = sasl_ssl("SCRAM-SHA-512")
    topic = f"tls-faust-{uuid.uuid4().hex[:10]}"
    await ensure_topics(settings, [TopicSpec(topic, retention_ms=3_600_000, has_dlq=False)], partitions=1)
    app = faust.App(
        f"tls-faust-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{settings.bootstrap}",
        broker_credentials=kafka.faust_credentials(settings),
        topic_allow_declare=False,
    )
    producer = app.producer
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"k", b"from-faust", partition=None, timestamp=None, headers=None)
    finally:
        await producer.stop()
    assert await read_back(settings, topic, 1) == [b"from-faust"]


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(lambda: sasl_ssl("SCRAM-SHA-512", sasl_password="wrong"), id="wrong-scram-password"),
        pytest.param(lambda: sasl_ssl("PLAIN", sasl_username="mallory"), id="unknown-plain-user"),
        pytest.param(lambda: mtls(with_certificate=False), id="mtls-without-client-certificate"),
        pytest.param(lambda: sasl_ssl("SCRAM-SHA-512", ssl_cafile=None), id="broker-not-trusted"),
    ],
)
async def test_the_broker_refuses_what_it_should(settings: Any) -> None:
    producer = kafka.producer(settings(), client_suffix="tls-refused")
    try:
        with pytest.raises(KafkaConnectionError):
            await producer.start()
    finally:
        await producer.stop()
