"""The composition root: settings, clients, handlers and loops of the provisioning service."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
from aiokafka import AIOKafkaConsumer

from closeloop import kafka
from closeloop.consumer_loop import ConsumerLoop
from closeloop.db import create_pool
from closeloop.dead_letter import DeadLetterPublisher
from closeloop.logging import configure_logging, get_logger
from closeloop.metrics import ServiceMetrics
from closeloop.ops import Readiness
from closeloop.record import RecordTopics, checkpoint
from closeloop.runtime import Runtime
from closeloop.service_wiring import database_ready, run_outbox_relay, start_ops_server
from closeloop.settings import AuditSettings, DatabaseSettings, KafkaSettings, PolicySettings
from closeloop.topics import DAY_MS, TopicSpec, dlq, ensure_topics
from provisioning.context import ACTOR, Provisioning
from provisioning.execute_command import ExecutorContext
from provisioning.executors import Executor, Executors, GitHubExecutor, ManualExecutor, OktaExecutor
from provisioning.executors.http import RetryPolicy
from provisioning.kafka_entry import CommandInputs, RecordInputs
from provisioning.policy import Policy
from provisioning.settings import ProvisioningSettings

SERVICE = "provisioning"
log = get_logger(__name__)


def build_executors(settings: ProvisioningSettings) -> Executors:
    """API executors only where configured (URL and token); the manual executor takes the rest."""
    retry = RetryPolicy(
        timeout_s=settings.executor_timeout_s,
        max_attempts=settings.executor_max_attempts,
        backoff_base_s=settings.executor_backoff_base_s,
        max_backoff_s=settings.executor_max_backoff_s,
    )
    api: list[Executor] = []
    if settings.okta_base_url and settings.okta_token:
        api.append(OktaExecutor(settings.okta_base_url, settings.okta_token, retry))
    if settings.github_token:
        api.append(
            GitHubExecutor(
                settings.github_base_url, settings.github_token, api_version=settings.github_api_version, retry=retry
            )
        )
    return Executors(api, ManualExecutor())


def _check_confirmation_policy(policy: Policy, executors: Executors) -> None:
    """Confirmation deadlines follow the policy's `api_executors` (expiry cannot see which executors run
    here), so say when the policy expects an API executor this process does not run, or the reverse."""
    expected, running = set(policy.confirmation.api_executors), set(executors.names) - {"manual"}
    if expected != running:
        log.warning(
            "the confirmation policy's api_executors differ from the executors configured: deadlines follow the policy",
            policy_api_executors=sorted(expected),
            configured=sorted(running),
        )


def topic_specs(settings: ProvisioningSettings) -> list[TopicSpec]:
    specs = [
        TopicSpec(settings.tickets_topic, retention_ms=30 * DAY_MS),
        TopicSpec(settings.grants_topic, retention_ms=30 * DAY_MS),
        TopicSpec(settings.entitlements_topic, retention_ms=-1, compacted=True),
        TopicSpec(settings.commands_topic, retention_ms=14 * DAY_MS),
    ]
    return specs + [TopicSpec(dlq(s.name), retention_ms=30 * DAY_MS, has_dlq=False) for s in specs]


async def bootstrap(
    settings: ProvisioningSettings | None = None,
    kafka_settings: KafkaSettings | None = None,
    database_settings: DatabaseSettings | None = None,
    audit_settings: AuditSettings | None = None,
    policy_settings: PolicySettings | None = None,
) -> Runtime:
    settings = settings or ProvisioningSettings()
    kafka_settings = kafka_settings or KafkaSettings()
    database_settings = database_settings or DatabaseSettings().for_service("provisioning")
    policy = Policy.load((policy_settings or PolicySettings()).file)
    configure_logging(SERVICE, settings.log_level)
    metrics = ServiceMetrics(SERVICE)
    runtime = Runtime(SERVICE, shutdown_grace_s=settings.shutdown_grace_s)
    try:
        await _assemble(
            runtime, settings, kafka_settings, database_settings, audit_settings or AuditSettings(), policy, metrics
        )
    except BaseException:
        await runtime.close()
        raise
    log.info(
        "provisioning ready to start",
        tickets=settings.tickets_topic,
        grants=settings.grants_topic,
        entitlements=settings.entitlements_topic,
        commands=settings.commands_topic,
    )
    return runtime


def run_audit_checkpoints(runtime: Runtime, pool: asyncpg.Pool, audit: AuditSettings) -> None:
    """Sign the audit chain head every interval, when a checkpoint key is configured."""
    configured = checkpoint.from_settings(audit)
    if configured is None or audit.checkpoint_interval_s == 0:
        log.info("audit checkpoints off", reason="no key file" if configured is None else "interval 0")
        return
    key, checkpoints = configured
    stop = asyncio.Event()
    interval = audit.checkpoint_interval_s
    runtime.loops.append(lambda: checkpoint.checkpoint_forever(pool, key, checkpoints, interval, stop))
    runtime.stoppers.append(stop.set)
    log.info("audit checkpoints on", file=str(checkpoints.path), interval_s=audit.checkpoint_interval_s)


async def _assemble(
    runtime: Runtime,
    settings: ProvisioningSettings,
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    audit_settings: AuditSettings,
    policy: Policy,
    metrics: ServiceMetrics,
) -> None:
    if settings.ensure_topics:
        await ensure_topics(kafka_settings, topic_specs(settings))
    pool: asyncpg.Pool = await create_pool(database_settings)
    runtime.closers.append(pool.close)
    executors = build_executors(settings)
    runtime.closers.append(executors.close)
    log.info("executors configured", executors=executors.names)
    _check_confirmation_policy(policy, executors)

    producer = kafka.producer(kafka_settings, client_suffix=f"{SERVICE}-producer")
    await producer.start()
    runtime.closers.append(producer.stop)
    dead_letters = DeadLetterPublisher(producer, SERVICE)

    topics = RecordTopics(
        entitlements=settings.entitlements_topic, commands=settings.commands_topic, grants=settings.grants_topic
    )
    ctx = Provisioning(
        pool=pool,
        policy=policy,
        topics=topics,
        consumer=settings.consumer_name,
        actor=ACTOR,
        reverify_after=timedelta(seconds=settings.reverify_after_s),
    )
    record_consumer = kafka.consumer(
        kafka_settings, settings.group_id, settings.tickets_topic, settings.grants_topic, client_suffix=SERVICE
    )
    await record_consumer.start()
    runtime.closers.append(record_consumer.stop)
    record_loop = ConsumerLoop(
        record_consumer,
        RecordInputs(ctx, metrics, tickets_topic=settings.tickets_topic, grants_topic=settings.grants_topic),
        dead_letters,
        metrics,
        batch_size=settings.batch_size,
    )
    runtime.loops.append(record_loop.run)
    runtime.stoppers.append(record_loop.stop)
    consumers: list[AIOKafkaConsumer] = [record_consumer]

    if settings.run_executors:
        command_consumer = kafka.consumer(
            kafka_settings, settings.executor_group_id, settings.commands_topic, client_suffix=f"{SERVICE}-executors"
        )
        await command_consumer.start()
        runtime.closers.append(command_consumer.stop)
        command_loop = ConsumerLoop(
            command_consumer, CommandInputs(ExecutorContext(pool, executors), metrics), dead_letters, metrics
        )
        runtime.loops.append(command_loop.run)
        runtime.stoppers.append(command_loop.stop)
        consumers.append(command_consumer)

    run_outbox_relay(
        runtime,
        pool,
        producer,
        metrics,
        batch_size=settings.outbox_batch_size,
        poll_interval_s=settings.outbox_poll_interval_s,
    )

    run_audit_checkpoints(runtime, pool, audit_settings)

    readiness = Readiness()

    async def partitions_assigned() -> bool:
        return all(bool(c.assignment()) for c in consumers)

    readiness.add("database", database_ready(pool))
    readiness.add("kafka_partitions", partitions_assigned)
    server = await start_ops_server(runtime, metrics, readiness, settings.ops_host, settings.ops_port)
    log.info("ops server listening", host=settings.ops_host, port=server.port)
