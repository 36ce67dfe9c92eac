"""The sandbox's badge read: answers from the ground truth, in each item shape, behind the same
auth, quota and one-customer-at-a-time rule as revokeEarn."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bulkrevoke.sandbox import BadgeKey, Sandbox, SandboxSettings
from bulkrevoke.sandbox.auth import basic_credentials

from .test_sandbox import CUSTOMER, META, Reply, badge, revoke

OTHER_META = "653de84db3cda7078c7c68ed"
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def read(
    session: aiohttp.ClientSession,
    sandbox: Sandbox,
    customer: str = CUSTOMER,
    meta: str = META,
    *,
    statistics: bool = True,
    **headers: str,
) -> Reply:
    url = f"{sandbox.url}/api_gateway/v1/badges/management/{customer}/badge/{meta}"
    params = {"includeStatistics": "true"} if statistics else {}
    async with session.get(url, params=params, headers=headers) as response:
        return Reply(response.status, await response.text(), response.headers)


def customer_state() -> dict[BadgeKey, bool]:
    """Badges 0 and 1 active, 2 already inactive, all of one customer and META; 3 is the
    customer's badge of another meta id."""
    state = {badge(0): True, badge(1): True, badge(2): False}
    state[BadgeKey(OTHER_META, "id", CUSTOMER, "e" * 24)] = True
    return state


async def test_standard_shape_follows_the_truth(session: aiohttp.ClientSession) -> None:
    async with Sandbox(SandboxSettings(state=customer_state())) as sandbox:
        before = await read(session, sandbox)
        assert (await revoke(session, sandbox, badge(1))).codes == []
        after = await read(session, sandbox)
        truth = sandbox.truth()
    assert before.status == 200 and before.body["errors"] == [] and before.body["warnings"] == []
    assert before.body["data"]["activeEarnedCount"] == 2
    data = after.body["data"]
    assert data["activeEarnedCount"] == 1
    assert data["earnDetails"]["earnCount"] == 3
    earns = {item["earnedBadgeId"]: item for item in data["earnDetails"]["earns"]}
    assert {key: item["isActive"] for key, item in earns.items()} == {
        badge(0).earned_badge_id: True,
        badge(1).earned_badge_id: False,
        badge(2).earned_badge_id: False,
    }
    assert earns[badge(0).earned_badge_id]["revokedOn"] is None
    for item in earns.values():
        assert ISO.fullmatch(item["earnedOn"])
        assert item["isActive"] or ISO.fullmatch(item["revokedOn"])
    # The badge revoked by the run was revoked after the one inactive from the start.
    assert earns[badge(1).earned_badge_id]["revokedOn"] > earns[badge(2).earned_badge_id]["revokedOn"]
    assert "issualDetails" in data
    assert truth.reads == 2 and truth.requests == 1
    assert len(truth.request_log) == 3  # one quota counts reads and revokes alike


async def test_counts_shape_names_no_earned_badge(session: aiohttp.ClientSession) -> None:
    settings = SandboxSettings(state=customer_state(), read_shape="counts")
    async with Sandbox(settings) as sandbox:
        reply = await read(session, sandbox)
    data = reply.body["data"]
    assert (data["activeEarnedCount"], data["earnDetails"]["earnCount"]) == (2, 3)
    earns = data["earnDetails"]["earns"]
    assert len(earns) == 3
    text = json.dumps(earns)
    assert all(badge(n).earned_badge_id not in text for n in range(3))
    assert not any({"earnedBadgeId", "id"} & set(item) for item in earns)


async def test_alternate_shape_uses_id_and_active_or_status(session: aiohttp.ClientSession) -> None:
    settings = SandboxSettings(state=customer_state(), read_shape="alternate")
    async with Sandbox(settings) as sandbox:
        reply = await read(session, sandbox)
    earns = reply.body["data"]["earnDetails"]["earns"]
    states: dict[str, Any] = {}
    for index, item in enumerate(earns):
        assert "earnedBadgeId" not in item and "isActive" not in item
        state = item["status"] if index % 2 else item["active"]
        states[item["id"]] = state
    truth = {badge(n).earned_badge_id: n < 2 for n in range(3)}
    assert {key: value in (True, "ACTIVE") for key, value in states.items()} == truth
    assert any(isinstance(value, str) for value in states.values())
    assert any(isinstance(value, bool) for value in states.values())


async def test_unknown_customer_other_meta_and_no_statistics(
    session: aiohttp.ClientSession,
) -> None:
    async with Sandbox(SandboxSettings(state=customer_state())) as sandbox:
        unknown = await read(session, sandbox, customer="42")
        never_had = await revoke(session, sandbox, badge(9, customer="43"))  # 814: not a badge
        still_unknown = await read(session, sandbox, customer="43")
        other_meta = await read(session, sandbox, meta="0" * 24)
        bare = await read(session, sandbox, statistics=False)
        padded = await read(session, sandbox, customer="00" + CUSTOMER)
    assert unknown.codes == [816] and unknown.body["data"] is None
    assert never_had.codes == [814] and still_unknown.codes == [816]
    assert other_meta.body["data"]["activeEarnedCount"] == 0
    assert other_meta.body["data"]["earnDetails"] == {"earnCount": 0, "earns": []}
    assert bare.status == 200 and "activeEarnedCount" not in bare.body["data"]
    assert bare.body["data"]["customerId"] == int(CUSTOMER)
    assert padded.body["data"]["activeEarnedCount"] == 2  # type id: 00566135941 is 566135941


async def test_identifier_header_names_the_customer(session: aiohttp.ClientSession) -> None:
    by_email = badge(5, customer="a@example.com", identifier="email")
    async with Sandbox(SandboxSettings(state={by_email: True})) as sandbox:
        found = await read(
            session, sandbox, customer="a@example.com", **{"X-CAP-CUSTOMER-IDENTIFIER": "email"}
        )
        as_id = await read(session, sandbox, customer="a@example.com")
        unknown_type = await read(session, sandbox, **{"X-CAP-CUSTOMER-IDENTIFIER": "fax"})
    assert found.body["data"]["activeEarnedCount"] == 1
    assert found.body["data"]["customerId"] == "a@example.com"
    assert as_id.status == 400 and as_id.codes == [400]
    assert unknown_type.status == 400


async def test_reads_need_credentials_and_count_against_the_quota(
    session: aiohttp.ClientSession,
) -> None:
    settings = SandboxSettings(
        username="store123",
        password="pw",
        state=customer_state(),
        rate_limit=2,
        rate_window=3600,
    )
    auth = {"Authorization": "Basic " + basic_credentials("store123", "pw")}
    async with Sandbox(settings) as sandbox:
        refused = await read(session, sandbox)
        allowed = await read(session, sandbox, **auth)
        revoked = await revoke(session, sandbox, badge(0), **auth)
        throttled = await read(session, sandbox, **auth)
        truth = sandbox.truth()
    assert refused.status == 401 and refused.codes == [401]
    assert allowed.status == 200 and revoked.status == 200
    assert throttled.status == 429 and "Retry-After" in throttled.headers
    assert (truth.unauthorized, truth.quota_throttled, truth.reads) == (1, 1, 3)


async def test_a_read_overlapping_a_revoke_gets_521(session: aiohttp.ClientSession) -> None:
    settings = SandboxSettings(state=customer_state(), latency=0.3)
    async with Sandbox(settings) as sandbox:
        revoked, overlapping = await asyncio.gather(
            revoke(session, sandbox, badge(0)), _after(0.1, read(session, sandbox))
        )
        after = await read(session, sandbox)
        truth = sandbox.truth()
    assert revoked.status == 200 and revoked.codes == []
    assert overlapping.status == 521 and overlapping.codes == [521]
    assert after.body["data"]["activeEarnedCount"] == 1
    assert truth.busy_overlap == 1


async def _after(seconds: float, reading: Any) -> Reply:
    await asyncio.sleep(seconds)  # the revoke must be in its latency when the read arrives
    result: Reply = await reading
    return result
