"""End to end: the five services as real processes, driven through their HTTP ingress, observed on the
alert, command and record topics. Topics, consumer groups and ports are unique to this run."""

from __future__ import annotations

import io
import json
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from rich.console import Console

from closeloop import topics
from closeloop.contracts.alerts import DriftRule
from closeloop.contracts.identity import EntitlementKey
from closeloop.settings import KafkaSettings
from closeloop.topics import TopicSpec, dlq, ensure_topics
from closeloop_demo import payloads as vendor
from closeloop_demo.config import DEMO_SERVICE_ENV, DemoConfig
from closeloop_demo.processes import PORT_VARIABLES, ServiceProcesses, service_specs
from closeloop_demo.senders import DeliveryRefused, Senders
from closeloop_demo.stories import Stories, record_status
from closeloop_demo.watch import TopicWatcher
from tests.support.infra import Infra

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class System:
    config: DemoConfig
    watcher: TopicWatcher
    topics: dict[str, str]


def isolated_env(run: str, ports: dict[str, int]) -> tuple[dict[str, str], dict[str, str]]:
    """Environment overrides that give this run its own topics, groups and ports."""
    names = {
        "tickets": f"e2e.{run}.{topics.ITSM_TICKETS}",
        "grants": f"e2e.{run}.{topics.IAM_GRANTS}",
        "entitlements": f"e2e.{run}.{topics.ENTITLEMENTS}",
        "commands": f"e2e.{run}.{topics.PROVISIONING_COMMANDS}",
        "alerts": f"e2e.{run}.{topics.DRIFT_ALERTS}",
        "servicenow_raw": f"e2e.{run}.itsm.raw.servicenow",
        "jira_raw": f"e2e.{run}.itsm.raw.jira",
        "generic_raw": f"e2e.{run}.itsm.raw.generic",
    }
    env = {
        "CLOSELOOP_INTAKE_TICKETS_TOPIC": names["tickets"],
        "CLOSELOOP_INTAKE_SERVICENOW_RAW_TOPIC": names["servicenow_raw"],
        "CLOSELOOP_INTAKE_JIRA_RAW_TOPIC": names["jira_raw"],
        "CLOSELOOP_INTAKE_GENERIC_RAW_TOPIC": names["generic_raw"],
        "CLOSELOOP_INTAKE_GROUP_ID": f"e2e-{run}-intake",
        "CLOSELOOP_CONNECTORS_GRANTS_TOPIC": names["grants"],
        "CLOSELOOP_CONNECTORS_RAW_TOPIC_PREFIX": f"e2e.{run}.iam.raw.",
        "CLOSELOOP_CONNECTORS_GROUP_ID": f"e2e-{run}-connectors",
        "CLOSELOOP_PROVISIONING_TICKETS_TOPIC": names["tickets"],
        "CLOSELOOP_PROVISIONING_GRANTS_TOPIC": names["grants"],
        "CLOSELOOP_PROVISIONING_ENTITLEMENTS_TOPIC": names["entitlements"],
        "CLOSELOOP_PROVISIONING_COMMANDS_TOPIC": names["commands"],
        "CLOSELOOP_PROVISIONING_GROUP_ID": f"e2e-{run}-provisioning",
        "CLOSELOOP_PROVISIONING_EXECUTOR_GROUP_ID": f"e2e-{run}-executors",
        "CLOSELOOP_EXPIRY_TICKETS_TOPIC": names["tickets"],
        "CLOSELOOP_EXPIRY_GRANTS_TOPIC": names["grants"],
        "CLOSELOOP_EXPIRY_ENTITLEMENTS_TOPIC": names["entitlements"],
        "CLOSELOOP_EXPIRY_COMMANDS_TOPIC": names["commands"],
        "CLOSELOOP_EXPIRY_GROUP_ID": f"e2e-{run}-expiry",
        "CLOSELOOP_RECONCILIATION_TICKETS_TOPIC": names["tickets"],
        "CLOSELOOP_RECONCILIATION_GRANTS_TOPIC": names["grants"],
        "CLOSELOOP_RECONCILIATION_ENTITLEMENTS_TOPIC": names["entitlements"],
        "CLOSELOOP_RECONCILIATION_ALERTS_TOPIC": names["alerts"],
        "CLOSELOOP_RECONCILIATION_APP_ID": f"e2e-{run}-reconciliation",
        **{PORT_VARIABLES[name]: str(port) for name, port in ports.items()},
    }
    return env, names


@pytest.fixture(scope="module")
async def system(infra: Infra, migrated: Infra) -> AsyncIterator[System]:
    run = uuid.uuid4().hex[:8]
    ports = {name: free_port() for name in PORT_VARIABLES}
    overrides, names = isolated_env(run, ports)
    kafka = KafkaSettings(bootstrap=infra.kafka_bootstrap)
    specs = [TopicSpec(n, 3_600_000, compacted=(k == "entitlements")) for k, n in names.items()]
    specs += [TopicSpec(dlq(n), 3_600_000) for n in names.values()]
    await ensure_topics(kafka, specs)

    config = DemoConfig(
        intake_url=f"http://127.0.0.1:{ports['request-intake']}",
        connectors_url=f"http://127.0.0.1:{ports['connectors']}",
    )
    env = {
        **config.service_env(),
        **DEMO_SERVICE_ENV,
        "CLOSELOOP_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "CLOSELOOP_DATABASE_URL": infra.database_url,
        "CLOSELOOP_DATABASE_MIGRATE_URL": infra.migrate_url,
        **overrides,
    }
    processes = ServiceProcesses(sys.executable, env, service_specs(ports), log_prefix=f"e2e-{run}")
    processes.start_all()
    watcher = TopicWatcher(kafka, names["alerts"], names["commands"], names["entitlements"])
    try:
        await processes.wait_ready()
        await watcher.start()
        yield System(config, watcher, names)
    finally:
        await watcher.stop()
        processes.stop_all()


@pytest.fixture
async def stories(system: System) -> AsyncIterator[Stories]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield Stories(
            Senders(session, system.config), system.watcher, Console(file=io.StringIO()), uuid.uuid4().hex[:6]
        )


async def test_unticketed_admin_grant_raises_one_ocsf_alert(system: System, stories: Stories) -> None:
    expectations = await stories.unticketed_admin()
    (expected,) = expectations
    assert await system.watcher.wait_for(expected.met, timeout_s=60), "no UNTICKETED_GRANT alert arrived"

    alerts = [a for a in system.watcher.observed.alerts if expected.key_contains in a.entitlement_key]
    opened = [a for a in alerts if a.rule is DriftRule.UNTICKETED_GRANT]
    assert len({a.finding_uid for a in opened}) == 1
    assert opened[0].activity.name == "CREATE"
    assert opened[0].severity_id == 4
    assert opened[0].entitlement_key.endswith("|aws:policy:arn:aws:iam::aws:policy/AdministratorAccess|attached")


async def test_approved_and_granted_access_is_recorded_without_drift(system: System, stories: Stories) -> None:
    key, *_ = await stories.grant_via_ticket("e2e", f"RITM8{stories.run}", "frank", f"00ge2e{stories.run}", "P7D")
    # Give the reconciler time to judge the grant (grace windows are 3 s here), then look for any alert on it.
    unrelated = await stories.unticketed_admin()
    assert await system.watcher.wait_for(unrelated[0].met, timeout_s=60)
    records = [r for r in system.watcher.observed.records if r["key"]["principal"] == key.principal]
    assert [r["status"] for r in records][-1] == "active"
    assert records[-1]["tickets"][0]["ticket_number"] == f"RITM8{stories.run}"
    assert not [a for a in system.watcher.observed.alerts if a.entitlement_key == str(key)]


async def test_forged_webhook_is_refused_and_publishes_nothing(system: System) -> None:
    record = vendor.servicenow_item(
        sys_id=vendor.new_sys_id(),
        number="RITM7000001",
        table="sc_req_item",
        state="1",
        approval="approved",
        stage="fulfillment",
        mod_count=1,
        short_description="forged",
        variables={"requested_for": "eve@example.com"},
    )
    forged = DemoConfig(
        env={**system.config.env, "CLOSELOOP_INTAKE_SERVICENOW_SECRET": "whsec_" + "A" * 43 + "="},
        intake_url=system.config.intake_url,
        connectors_url=system.config.connectors_url,
    )
    async with aiohttp.ClientSession() as session:
        with pytest.raises(DeliveryRefused, match="401"):
            await Senders(session, forged).servicenow(record)
    assert not [r for r in system.watcher.observed.records if "eve@example.com" in json.dumps(r)]


async def test_a_ticket_naming_people_and_groups_as_people_do_joins_the_grant(system: System, stories: Stories) -> None:
    """A ServiceNow item names the Okta group by its display name and the person by email (as typed, mixed case).
    The group is unknown when the item is approved; the Okta event that grants it teaches the name, the ticket
    binds late, provisioning records the entitlement on the group's id at the next transition: no drift at all."""
    run = stories.run
    login, user_id = stories.person("gina")
    group_id, group_name = f"00gpay{run}", f"Payroll Admins {run}"
    key = EntitlementKey(principal=f"okta:user:{login}", resource=f"okta:group:{group_id}", privilege="member")
    sys_id, number = vendor.new_sys_id(), f"RITM9{run}"

    def named(item: dict[str, Any]) -> dict[str, Any]:
        item["variables"].update({"access_resource": group_name, "requested_for": login.title()})
        return item

    await stories.send.servicenow(named(stories.approved_item(number, sys_id, login, group_id, duration="P7D")))
    await stories.send.okta(
        vendor.okta_hook([vendor.okta_group_membership("add", login, user_id, group_id, group_name)])
    )
    await stories.send.servicenow(named(stories.closed_item(number, sys_id, login, group_id, duration="P7D")))
    assert await system.watcher.wait_for(record_status(key, "active"), timeout_s=60), "no active record on the id"
    unrelated = await stories.unticketed_admin()  # the reconciler has judged the grant well past its grace by then
    assert await system.watcher.wait_for(unrelated[0].met, timeout_s=60)
    records = [r for r in system.watcher.observed.records if r["key"]["resource"] == key.resource]
    assert records[-1]["tickets"][0]["ticket_number"] == number
    assert not [
        a
        for a in system.watcher.observed.alerts
        if group_id in a.entitlement_key or (run in a.entitlement_key and "Payroll" in a.entitlement_key)
    ]
