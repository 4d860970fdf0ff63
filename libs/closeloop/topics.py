"""The one declaration of every closeloop topic and its dead-letter topic; created idempotently.

Run `python -m closeloop.topics` to create them (the local stack does this in `make up`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from closeloop.kafka import admin_client
from closeloop.logging import configure_logging, get_logger
from closeloop.settings import KafkaSettings

DAY_MS = 24 * 3600 * 1000
DLQ_SUFFIX = ".dlq"

ITSM_TICKETS = "itsm.tickets.v1"
IAM_GRANTS = "iam.grants.v1"
ENTITLEMENTS = "entitlements.v1"
PROVISIONING_COMMANDS = "provisioning.commands.v1"
DRIFT_ALERTS = "drift.alerts.v1"
# The identity graph and the resource catalog (compacted: the latest statement per name / resource).
IDENTITY_LINKS = "identity.links.v1"
CATALOG_RESOURCES = "catalog.resources.v1"
ITSM_RAW_SYSTEMS = ("servicenow", "jira", "generic")
IAM_RAW_SOURCES = ("okta", "entra", "cloudtrail", "github", "k8s", "vault")


def itsm_raw(system: str) -> str:
    return f"itsm.raw.{system}"


def iam_raw(source: str) -> str:
    return f"iam.raw.{source}"


def dlq(topic: str) -> str:
    return topic + DLQ_SUFFIX


@dataclass(frozen=True)
class TopicSpec:
    name: str
    retention_ms: int
    compacted: bool = False
    # Whether the topic gets a dead-letter topic `<name>.dlq`: every topic something consumes (see
    # closeloop.dead_letter for the rule), so every letter can be replayed onto the topic it names.
    has_dlq: bool = True
    extra_config: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        config = {"retention.ms": str(self.retention_ms), **self.extra_config}
        if self.compacted:
            # The record is the latest state per key: keep it forever, drop superseded versions.
            config.update({"cleanup.policy": "compact", "retention.ms": "-1", "min.compaction.lag.ms": "60000"})
        return config


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(ITSM_TICKETS, retention_ms=30 * DAY_MS),
    TopicSpec(IAM_GRANTS, retention_ms=30 * DAY_MS),
    TopicSpec(ENTITLEMENTS, retention_ms=-1, compacted=True),
    TopicSpec(PROVISIONING_COMMANDS, retention_ms=14 * DAY_MS),
    TopicSpec(DRIFT_ALERTS, retention_ms=90 * DAY_MS),
    TopicSpec(IDENTITY_LINKS, retention_ms=-1, compacted=True),
    TopicSpec(CATALOG_RESOURCES, retention_ms=-1, compacted=True),
    *(TopicSpec(itsm_raw(s), retention_ms=7 * DAY_MS) for s in ITSM_RAW_SYSTEMS),
    *(TopicSpec(iam_raw(s), retention_ms=7 * DAY_MS) for s in IAM_RAW_SOURCES),
)

DLQ_RETENTION_MS = 30 * DAY_MS


def all_topic_specs() -> list[TopicSpec]:
    specs = list(TOPICS)
    specs += [TopicSpec(dlq(t.name), retention_ms=DLQ_RETENTION_MS, has_dlq=False) for t in TOPICS if t.has_dlq]
    return specs


async def ensure_topics(
    settings: KafkaSettings, specs: list[TopicSpec] | None = None, partitions: int | None = None
) -> list[str]:
    """Create every missing topic; return the names created. Existing topics are left as they are."""
    specs = specs if specs is not None else all_topic_specs()
    admin: AIOKafkaAdminClient = admin_client(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        created: list[str] = []
        for spec in missing:
            topic = NewTopic(
                name=spec.name,
                num_partitions=partitions or settings.partitions,
                replication_factor=settings.replication_factor,
                topic_configs=spec.config(),
            )
            response = await admin.create_topics([topic])
            for error in response.topic_errors:
                code = error[1]
                if code == 0:
                    created.append(spec.name)
                elif code != TopicAlreadyExistsError.errno:
                    # Another process creating it between our listing and our request is fine; nothing else is.
                    message = error[2] if len(error) > 2 else ""
                    raise RuntimeError(f"creating topic {spec.name} failed: error {code} {message}")
        return created
    finally:
        await admin.close()


def main() -> None:
    configure_logging("topics")
    created = asyncio.run(ensure_topics(KafkaSettings()))
    get_logger().info("topics ensured", created=created, total=len(all_topic_specs()))


if __name__ == "__main__":
    main()
