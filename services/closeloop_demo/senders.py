"""Deliver payloads the way the vendors do: signed webhooks to request-intake, hooks to the connectors."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
from standardwebhooks.webhooks import Webhook

from closeloop_demo.config import DemoConfig


class DeliveryRefused(RuntimeError):
    pass


class Senders:
    def __init__(self, session: aiohttp.ClientSession, config: DemoConfig) -> None:
        self._session = session
        self._config = config

    async def servicenow(self, record: dict[str, Any]) -> None:
        body = json.dumps(record)
        msg_id = f"msg_{uuid.uuid4().hex}"
        now = datetime.now(UTC)
        signature = Webhook(self._config.servicenow_secret).sign(msg_id, now, body)
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        }
        await self._post(f"{self._config.intake_url}/v1/webhooks/servicenow", body, headers)

    async def okta(self, hook: dict[str, Any]) -> None:
        headers = {"content-type": "application/json", "Authorization": self._config.okta_secret}
        await self._post(f"{self._config.connectors_url}/v1/hooks/okta", json.dumps(hook), headers)

    async def cloudtrail(self, record: dict[str, Any]) -> None:
        headers = {"content-type": "application/json", "Authorization": f"Bearer {self._config.hook_secret}"}
        await self._post(f"{self._config.connectors_url}/v1/hooks/cloudtrail", json.dumps(record), headers)

    async def _post(self, url: str, body: str, headers: dict[str, str]) -> None:
        async with self._session.post(url, data=body.encode(), headers=headers) as response:
            if response.status >= 300:
                detail = (await response.text())[:500]
                raise DeliveryRefused(f"{url} answered {response.status}: {detail}")
