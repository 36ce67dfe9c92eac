"""The sandbox, tested the way clients use it: real HTTP over loopback."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import pytest
from multidict import CIMultiDictProxy

import bulkrevoke.sandbox as sandbox_api
from bulkrevoke.errors import ConfigError
from bulkrevoke.sandbox import (
    NO_FAULTS,
    BadgeKey,
    FaultProfile,
    GroundTruth,
    Sandbox,
    SandboxSettings,
    SandboxThread,
    StateFileError,
    add_sandbox_arguments,
    load_state,
    settings_from_args,
)
from bulkrevoke.sandbox.args import loopback_warning
from bulkrevoke.sandbox.auth import basic_credentials
from bulkrevoke.sandbox.faults import Fault, FaultPicker

ROOT = Path(__file__).resolve().parents[1]
REVOKE = "/api_gateway/v1/badges/customer/revokeEarn"
TOKEN = "/v3/oauth/token/generate"
META = "698dae82d30c4f6b3da9dc06"
CUSTOMER = "566135941"
# Capillary's documented example header. The docs say it is for store123 / Pass123, but the
# MD5 inside it (bdc87b9c...) is that of "password1234": the docs' arithmetic is wrong,
# the scheme is right. So the example holds for store123 / password1234.
WORKED_EXAMPLE = "c3RvcmUxMjM6YmRjODdiOWM4OTRkYTUxNjgwNTllMDBlYmZmYjkwNzc="
EXAMPLE_PASSWORD = "password1234"
INVALID_CREDENTIALS = {
    "data": None,
    "errors": [{"code": 401, "message": "Invalid Credentials", "reference": None}],
    "warnings": None,
}


def badge(n: int = 0, *, customer: str = CUSTOMER, identifier: str = "id") -> BadgeKey:
    return BadgeKey(META, identifier, customer, f"698daf848644c157e7{n:06x}")


class Reply(NamedTuple):
    status: int
    text: str
    headers: CIMultiDictProxy[str]

    @property
    def body(self) -> Any:
        return json.loads(self.text)

    @property
    def codes(self) -> list[int]:
        return [error["code"] for error in self.body["errors"] or []]


def request_body(key: BadgeKey) -> dict[str, Any]:
    customer: Any = int(key.customer_id) if key.identifier_type == "id" else key.customer_id
    return {
        "badgeMetaId": key.badge_meta_id,
        "customerId": customer,
        "earnedBadgeId": key.earned_badge_id,
    }


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: Any,
    headers: dict[str, str] | None = None,
    timeout: float | None = None,
) -> Reply:
    kwargs: dict[str, Any] = {"headers": headers or {}}
    kwargs["data" if isinstance(body, (str, bytes)) else "json"] = body
    if timeout is not None:
        kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout)
    async with session.post(url, **kwargs) as response:
        return Reply(response.status, await response.text(), response.headers)


async def revoke(session: aiohttp.ClientSession, sandbox: Sandbox, key: BadgeKey, **headers: str) -> Reply:
    if key.identifier_type != "id":
        headers.setdefault("X-CAP-CUSTOMER-IDENTIFIER", key.identifier_type)
    return await post(session, sandbox.url + REVOKE, request_body(key), headers)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def faulty(**knobs: Any) -> SandboxSettings:
    """A sandbox knowing badges 0..19 as active, with the given faults."""
    state = {badge(n): True for n in range(20)}
    return SandboxSettings(state=state, faults=FaultProfile(**knobs))


# --- the public face -------------------------------------------------------------------


def test_public_names() -> None:
    assert sorted(sandbox_api.__all__) == [
        "BadgeKey",
        "BadgeTruth",
        "FaultProfile",
        "GroundTruth",
        "NO_FAULTS",
        "Sandbox",
        "SandboxSettings",
        "SandboxThread",
        "StateFileError",
        "add_sandbox_arguments",
        "load_state",
        "serve_forever",
        "settings_from_args",
    ]
    assert FaultProfile() == NO_FAULTS


# --- answers -------------------------------------------------------------------------------


async def test_revoke_then_814(session: aiohttp.ClientSession) -> None:
    key = badge()
    async with Sandbox(SandboxSettings(state={key: True})) as sandbox:
        first = await revoke(session, sandbox, key)
        second = await revoke(session, sandbox, key)
        truth = sandbox.truth()
    assert first.status == 200
    assert first.body == {
        "data": {
            "badgeMetaId": META,
            "customerId": 566135941,
            "earnedBadgeId": key.earned_badge_id,
            "isActive": False,
        },
        "errors": [],
        "warnings": [],
    }
    assert second.status == 200
    assert second.body == {
        "data": None,
        "errors": [{"code": 814, "message": "Active earn instance is not present", "reference": None}],
        "warnings": None,
    }
    record = truth.badges[key]
    assert (record.initially_active, record.active) == (True, False)
    assert (record.requests, record.applied, record.successes, record.lost_answers) == (2, 1, 1, 0)
    assert [status for _, status in truth.request_log] == [200, 200]
    assert truth.requests == 2


async def test_unknown_badge_absent_or_active(session: aiohttp.ClientSession) -> None:
    key = badge(7)
    async with Sandbox(SandboxSettings()) as sandbox:
        assert (await revoke(session, sandbox, key)).codes == [814]
        absent = sandbox.truth().badges[key]
    assert (absent.initially_active, absent.active, absent.applied) == (None, False, 0)

    async with Sandbox(SandboxSettings(unknown_badges="active")) as sandbox:
        assert (await revoke(session, sandbox, key)).codes == []
        assert (await revoke(session, sandbox, key)).codes == [814]
        seen = sandbox.truth().badges[key]
    assert (seen.initially_active, seen.active, seen.applied, seen.successes) == (True, False, 1, 1)


async def test_state_marks_a_badge_inactive(session: aiohttp.ClientSession) -> None:
    key = badge()
    async with Sandbox(SandboxSettings(unknown_badges="active", state={key: False})) as sandbox:
        reply = await revoke(session, sandbox, key)
        assert (reply.status, reply.codes) == (200, [814])
        assert sandbox.truth().badges[key].initially_active is False


META_MISSING = (715, "Badge meta id is mandatory")
EARN_MISSING = (813, "EarnId is mandatory")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"customerId": 1, "earnedBadgeId": "e"}, META_MISSING),
        ({"badgeMetaId": "", "customerId": 1, "earnedBadgeId": "e"}, META_MISSING),
        ({"badgeMetaId": "m", "customerId": 1}, EARN_MISSING),
        ({"badgeMetaId": "m", "customerId": 1, "earnedBadgeId": " "}, EARN_MISSING),
        ('{"badgeMetaId": "m", ', (400, "Request body is not valid JSON")),
        ("[1, 2]", (400, "Request body must be a JSON object")),
    ],
)
async def test_validation_errors(session: aiohttp.ClientSession, body: Any, error: tuple[int, str]) -> None:
    code, message = error
    async with Sandbox(SandboxSettings(unknown_badges="active")) as sandbox:
        reply = await post(session, sandbox.url + REVOKE, body)
        truth = sandbox.truth()
    assert reply.status == 400
    assert reply.body == {
        "data": None,
        "errors": [{"code": code, "message": message, "reference": None}],
        "warnings": None,
    }
    assert truth.badges == {}
    assert truth.request_log[0][1] == 400


async def test_customer_id_type_follows_identifier(session: aiohttp.ClientSession) -> None:
    by_id, by_email = badge(1), badge(2, customer="a@example.com", identifier="email")
    async with Sandbox(SandboxSettings(state={by_id: True, by_email: True})) as sandbox:
        url = sandbox.url + REVOKE
        as_text = {**request_body(by_id), "customerId": CUSTOMER}
        wrong_id = await post(session, url, as_text)
        email_header = {"X-CAP-CUSTOMER-IDENTIFIER": "email"}
        wrong_email = await post(session, url, {**request_body(by_email), "customerId": 5}, email_header)
        assert sandbox.truth().badges[by_id].active  # a refused request changes nothing
        right_id = await revoke(session, sandbox, by_id)
        right_email = await revoke(session, sandbox, by_email)
    assert (wrong_id.status, wrong_id.codes) == (400, [400])
    assert wrong_id.body["errors"][0]["message"] == "customerId must be a number for identifier type id"
    assert (wrong_email.status, wrong_email.codes) == (400, [400])
    assert right_id.body["data"]["customerId"] == 566135941
    assert right_email.body["data"]["customerId"] == "a@example.com"


async def test_every_response_has_a_unique_request_id(session: aiohttp.ClientSession) -> None:
    settings = SandboxSettings(username="store123", password=EXAMPLE_PASSWORD, state={badge(): True})
    async with Sandbox(settings) as sandbox:
        auth = {"Authorization": f"Basic {WORKED_EXAMPLE}"}
        replies = [
            await revoke(session, sandbox, badge()),  # 401
            await revoke(session, sandbox, badge(), **auth),  # 200
            await revoke(session, sandbox, badge(), **auth),  # 814
            await post(session, sandbox.url + REVOKE, "{", auth),  # 400
            await post(session, sandbox.url + TOKEN, {"key": "k", "secret": "s"}),  # 401
            await post(session, sandbox.url + "/no/such/path", {}),  # 404 from aiohttp
        ]
        async with session.get(sandbox.url + "/_sandbox/truth") as response:
            truth_id = response.headers["X-Cap-Requestid"]
    assert [reply.status for reply in replies] == [401, 200, 200, 400, 401, 404]
    ids = [reply.headers["X-Cap-Requestid"] for reply in replies] + [truth_id]
    assert all(ids) and len(set(ids)) == len(ids)


# --- authentication --------------------------------------------------------------------------


def test_basic_credentials_follow_capillarys_worked_example() -> None:
    assert basic_credentials("store123", EXAMPLE_PASSWORD) == WORKED_EXAMPLE
    # base64("store123:" + md5_hex("Pass123")), what the docs' recipe really gives:
    assert basic_credentials("store123", "Pass123") == (
        "c3RvcmUxMjM6MmYyM2ZhMzU3OWYzZjc1MTc1NzkzNjQ5MTE1YzFiMjU="
    )


async def test_basic_auth(session: aiohttp.ClientSession) -> None:
    key = badge()
    settings = SandboxSettings(username="store123", password=EXAMPLE_PASSWORD, state={key: True})
    async with Sandbox(settings) as sandbox:
        plain = "Basic " + base64.b64encode(b"store123:password1234").decode()
        refused = [
            await revoke(session, sandbox, key),
            await revoke(session, sandbox, key, Authorization=plain),  # password not MD5-hashed
        ]
        unchanged = sandbox.truth()
        accepted = await revoke(session, sandbox, key, Authorization=f"Basic {WORKED_EXAMPLE}")
    for reply in refused:
        assert (reply.status, reply.body) == (401, INVALID_CREDENTIALS)
    assert unchanged.badges[key].active and unchanged.badges[key].requests == 0
    assert (unchanged.unauthorized, unchanged.requests) == (2, 2)
    assert (accepted.status, accepted.codes) == (200, [])


async def test_oauth_token_generate_use_and_expiry(session: aiohttp.ClientSession) -> None:
    keys = [badge(n) for n in range(3)]
    settings = SandboxSettings(
        client_key="key", client_secret="secret", token_ttl=0.2, state=dict.fromkeys(keys, True)
    )
    async with Sandbox(settings) as sandbox:
        token_url = sandbox.url + TOKEN
        wrong = await post(session, token_url, {"key": "key", "secret": "nope"})
        issued = await post(session, token_url, {"key": "key", "secret": "secret"})
        token = issued.body["data"]["accessToken"]
        used = await revoke(session, sandbox, keys[0], **{"X-CAP-API-OAUTH-TOKEN": token})
        unknown = await revoke(session, sandbox, keys[1], **{"X-CAP-API-OAUTH-TOKEN": "x.y.z"})
        await asyncio.sleep(0.25)
        expired = await revoke(session, sandbox, keys[2], **{"X-CAP-API-OAUTH-TOKEN": token})
        truth = sandbox.truth()
    assert (wrong.status, wrong.codes) == (401, [401])
    assert issued.status == 200 and issued.body["errors"] is None
    assert issued.body["data"]["ttlSeconds"] == 0.2
    assert token.count(".") == 2  # shaped like a JWT
    assert (used.status, used.codes) == (200, [])
    assert (unknown.status, unknown.codes) == (401, [401])
    assert (expired.status, expired.codes) == (401, [401])
    assert truth.badges[keys[1]].active and truth.badges[keys[2]].active
    assert (truth.unauthorized, truth.tokens_issued) == (2, 1)


async def test_open_sandbox_issues_tokens_to_anyone(session: aiohttp.ClientSession) -> None:
    async with Sandbox(SandboxSettings()) as sandbox:
        issued = await post(session, sandbox.url + TOKEN, {"key": "any", "secret": "thing"})
        assert issued.body["data"]["ttlSeconds"] == 300
        reply = await revoke(session, sandbox, badge(), **{"X-CAP-API-OAUTH-TOKEN": "whatever"})
    assert (reply.status, reply.codes) == (200, [814])


# --- rate limit and latency ----------------------------------------------------------------


async def test_server_rate_limit(session: aiohttp.ClientSession) -> None:
    keys = [badge(n) for n in range(3)]
    settings = SandboxSettings(state=dict.fromkeys(keys, True), rate_limit=2, rate_window=30)
    async with Sandbox(settings) as sandbox:
        replies = [await revoke(session, sandbox, key) for key in keys]
        truth = sandbox.truth()
    assert [reply.status for reply in replies] == [200, 200, 429]
    assert replies[2].codes == [429]
    assert 1 <= int(replies[2].headers["Retry-After"]) <= 30
    assert truth.badges[keys[2]].active and truth.badges[keys[2]].applied == 0
    assert truth.throttled == 1


class _RecordedWaits:
    """asyncio as the sandbox's endpoints see it, with each wait recorded, not waited."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


@pytest.mark.parametrize(("slow", "least", "most"), [(0, 0.05, 0.07), (1, 0.15, 0.17)])
async def test_latency_jitter_and_the_slow_fault_delay_answers(
    session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
    slow: float,
    least: float,
    most: float,
) -> None:
    from bulkrevoke.sandbox import endpoints

    recorded = _RecordedWaits()
    monkeypatch.setattr(endpoints, "asyncio", recorded)
    settings = SandboxSettings(
        state={badge(): True},
        latency=0.05,
        latency_jitter=0.02,
        faults=FaultProfile(slow=slow, slow_seconds=0.1),
    )
    async with Sandbox(settings) as sandbox:
        reply = await revoke(session, sandbox, badge())
    assert reply.status == 200
    # One wait before the answer: the latency, a jitter of up to 0.02 s, and the slow fault's.
    assert len(recorded.waits) == 1 and least <= recorded.waits[0] <= most


# --- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("knobs", "retry_after"),
    [({"throttle": 1, "retry_after": 3}, "3"), ({"throttle_bare": 1}, None)],
)
async def test_throttle_faults(
    session: aiohttp.ClientSession, knobs: dict[str, Any], retry_after: str | None
) -> None:
    async with Sandbox(faulty(**knobs)) as sandbox:
        reply = await revoke(session, sandbox, badge())
        truth = sandbox.truth()
    assert (reply.status, reply.codes) == (429, [429])
    assert reply.headers.get("Retry-After") == retry_after
    assert truth.badges[badge()].active and truth.throttled == 1


async def test_server_errors_and_gateway_errors(session: aiohttp.ClientSession) -> None:
    keys = [badge(n) for n in range(16)]
    async with Sandbox(faulty(server_error=1)) as sandbox:
        replies = [await revoke(session, sandbox, key) for key in keys]
        truth = sandbox.truth()
    statuses = [reply.status for reply in replies]
    assert set(statuses) <= {500, 502, 503, 504} and {502, 504} & set(statuses)
    for key, reply in zip(keys, replies, strict=True):
        assert reply.codes == [reply.status]
        record = truth.badges[key]
        assert record.active and record.applied == 0
        assert record.gateway_errors == (reply.status in (502, 504))


async def test_busy_fault(session: aiohttp.ClientSession) -> None:
    async with Sandbox(faulty(busy=1)) as sandbox:
        reply = await revoke(session, sandbox, badge())
        assert sandbox.truth().badges[badge()].active
    assert reply.status == 521
    assert reply.body["errors"][0] == {
        "code": 521,
        "message": "Multiple actions are running for the same customer. Please try after some time",
        "reference": None,
    }


async def test_drop_applies_then_disconnects(session: aiohttp.ClientSession) -> None:
    async with Sandbox(faulty(drop=1)) as sandbox:
        with pytest.raises(aiohttp.ClientConnectionError):
            await revoke(session, sandbox, badge())
        truth = sandbox.truth()
    record = truth.badges[badge()]
    assert (record.active, record.applied, record.lost_answers, record.successes) == (
        False,
        1,
        1,
        0,
    )
    assert truth.request_log[0][1] == 0


async def test_hang_applies_then_never_answers(session: aiohttp.ClientSession) -> None:
    sandbox = Sandbox(faulty(hang=1, hang_seconds=30))
    await sandbox.start()
    try:
        with pytest.raises(asyncio.TimeoutError):
            await post(session, sandbox.url + REVOKE, request_body(badge()), timeout=0.2)
        record = sandbox.truth().badges[badge()]
        assert (record.active, record.applied, record.lost_answers) == (False, 1, 1)
        # A second client is mid-hang when the sandbox stops: stop wakes its request, which
        # closes the connection, rather than waiting the hang out.
        pending = asyncio.ensure_future(revoke(session, sandbox, badge(1)))
        while not pending.done() and not _applied(sandbox, badge(1)):
            await asyncio.sleep(0.005)
    finally:
        await sandbox.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        await pending
    hung = sandbox.truth().badges[badge(1)]
    assert (hung.active, hung.applied, hung.lost_answers) == (False, 1, 1)


def _applied(sandbox: Sandbox, key: BadgeKey) -> int:
    record = sandbox.truth().badges.get(key)
    return record.applied if record else 0


async def test_malformed_answer(session: aiohttp.ClientSession) -> None:
    async with Sandbox(faulty(malformed=1)) as sandbox:
        reply = await revoke(session, sandbox, badge())
        record = sandbox.truth().badges[badge()]
    assert reply.status == 200
    with pytest.raises(ValueError):
        json.loads(reply.text)
    assert (record.active, record.applied, record.lost_answers, record.successes) == (
        False,
        1,
        1,
        0,
    )


async def test_inactive_400(session: aiohttp.ClientSession) -> None:
    key = badge()
    settings = SandboxSettings(state={key: False}, faults=FaultProfile(inactive_400=1))
    async with Sandbox(settings) as sandbox:
        reply = await revoke(session, sandbox, key)
    assert (reply.status, reply.codes) == (400, [814])


# --- determinism -----------------------------------------------------------------------------

MIXED = {"seed": 42, "throttle": 0.25, "server_error": 0.25, "busy": 0.2}


async def outcomes_in_order(
    session: aiohttp.ClientSession, profile: dict[str, Any], order: list[int]
) -> dict[int, list[int]]:
    """Statuses per badge when badges are sent in ``order``, sequentially."""
    seen: dict[int, list[int]] = {n: [] for n in set(order)}
    async with Sandbox(faulty(**profile)) as sandbox:
        for n in order:
            seen[n].append((await revoke(session, sandbox, badge(n))).status)
    return seen


async def test_same_seed_same_faults_whatever_the_order(session: aiohttp.ClientSession) -> None:
    round_robin = [n for _ in range(4) for n in range(6)]
    one_by_one = [n for n in reversed(range(6)) for _ in range(4)]
    first = await outcomes_in_order(session, MIXED, round_robin)
    again = await outcomes_in_order(session, MIXED, round_robin)
    reordered = await outcomes_in_order(session, MIXED, one_by_one)
    other_seed = await outcomes_in_order(session, {**MIXED, "seed": 43}, round_robin)
    assert first == again == reordered
    assert first != other_seed
    statuses = {status for run in first.values() for status in run}
    assert 200 in statuses and statuses & {429, 521, 500, 502, 503, 504}


async def test_concurrent_requests_get_the_same_faults(session: aiohttp.ClientSession) -> None:
    sequential = await outcomes_in_order(session, MIXED, [n for n in range(6) for _ in range(3)])
    async with Sandbox(faulty(**MIXED)) as sandbox:

        async def one_badge(n: int) -> list[int]:
            return [(await revoke(session, sandbox, badge(n))).status for _ in range(3)]

        concurrent = await asyncio.gather(*(one_badge(n) for n in range(6)))
    assert dict(enumerate(concurrent)) == sequential


def test_fault_picker_is_pure_and_follows_the_probabilities() -> None:
    picker = FaultPicker(FaultProfile(seed=1, throttle=0.3, drop=0.1, slow=0.5))
    decisions = [picker.decide(badge(n), attempt) for n in range(2000) for attempt in range(2)]
    again = [picker.decide(badge(n), attempt) for n in range(2000) for attempt in range(2)]
    assert decisions == again
    share = {fault: sum(d.fault is fault for d in decisions) / len(decisions) for fault in Fault}
    assert abs(share[Fault.THROTTLE] - 0.3) < 0.03 and abs(share[Fault.DROP] - 0.1) < 0.02
    assert share[Fault.HANG] == 0
    assert abs(sum(d.slow for d in decisions) / len(decisions) - 0.5) < 0.03


def test_profile_and_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="over 1"):
        FaultProfile(throttle=0.6, drop=0.6)
    with pytest.raises(ValueError, match=r"0\.\.1"):
        FaultProfile(slow=1.5)
    with pytest.raises(ValueError, match="together"):
        SandboxSettings(username="store123")
    assert "Pass123" not in repr(SandboxSettings(username="store123", password="Pass123"))


# --- ground truth over HTTP ------------------------------------------------------------------


async def test_truth_endpoint_round_trips(session: aiohttp.ClientSession) -> None:
    keys = [badge(0), badge(1, customer="+919999999999", identifier="mobile")]
    async with Sandbox(SandboxSettings(state={keys[0]: True, keys[1]: False})) as sandbox:
        await revoke(session, sandbox, keys[0])
        await revoke(session, sandbox, badge(2))
        async with session.get(sandbox.url + "/_sandbox/truth") as response:
            data = await response.json()
        truth = sandbox.truth()
    assert GroundTruth.from_json(data) == truth
    by_earned = {item["key"]["earnedBadgeId"]: item for item in data["badges"]}
    assert by_earned[keys[1].earned_badge_id]["key"] == {
        "badgeMetaId": META,
        "identifierType": "mobile",
        "customerId": "+919999999999",
        "earnedBadgeId": keys[1].earned_badge_id,
    }
    assert by_earned[keys[0].earned_badge_id]["applied"] == 1
    assert by_earned[badge(2).earned_badge_id]["initially_active"] is None
    assert data["requests"] == 2 and len(data["request_log"]) == 2


# --- state file ------------------------------------------------------------------------------


def test_load_state(tmp_path: Path) -> None:
    path = tmp_path / "badges.state.csv"
    path.write_text(
        "\ufeff Badge_Meta_ID ,customer-id,Identifier Type,earnedBadgeId,ACTIVE\n"
        f"{META},00566135941,,e1,true\n"
        "\n"
        f"{META},a@example.com,EMAIL,e2,No\n"
        f"{META},42,id,e3,1\n",
        encoding="utf-8",
    )
    assert load_state(path) == {
        BadgeKey(META, "id", "566135941", "e1"): True,
        BadgeKey(META, "email", "a@example.com", "e2"): False,
        BadgeKey(META, "id", "42", "e3"): True,
    }
    tsv = tmp_path / "badges.tsv"
    tsv.write_text("badgeMetaId\tcustomerId\tearnedBadgeId\tactive\nm\t7\te\tyes\n")
    assert load_state(str(tsv)) == {BadgeKey("m", "id", "7", "e"): True}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("badgeMetaId,customerId,earnedBadgeId\nm,1,e\n", "lacks column"),
        ("badgeMetaId,customerId,earnedBadgeId,active\nm,1,e,maybe\n", "line 2: active must be"),
        ("badgeMetaId,customerId,identifierType,earnedBadgeId,active\nm,1,fax,e,1\n", "fax"),
        ("badgeMetaId,customerId,earnedBadgeId,active\n,1,e,1\n", "empty badgeMetaId"),
        ("", "is empty"),
    ],
)
def test_load_state_refuses_bad_files(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "state.csv"
    path.write_text(text)
    with pytest.raises(StateFileError, match=problem) as caught:
        load_state(path)
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, ValueError)
    with pytest.raises(StateFileError, match="cannot read"):
        load_state(tmp_path / "missing.csv")


# --- synchronous use, command line, standalone process -------------------------------------


def test_sandbox_thread_from_sync_code() -> None:
    key = badge()
    with SandboxThread(SandboxSettings(state={key: True})) as sandbox:
        request = urllib.request.Request(
            sandbox.url + REVOKE,
            data=json.dumps(request_body(key)).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
            assert json.load(response)["data"]["isActive"] is False
        assert sandbox.truth().badges[key].applied == 1
    assert sandbox.truth().badges[key].successes == 1  # still readable after stop


async def test_sandbox_thread_reports_a_failed_start() -> None:
    async with Sandbox(SandboxSettings()) as taken:
        port = int(taken.url.rsplit(":", 1)[1])
        with pytest.raises(OSError):
            SandboxThread(SandboxSettings(port=port)).start()


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_sandbox_arguments(parser)
    return parser.parse_args(argv)


def test_arguments_become_settings(tmp_path: Path) -> None:
    state = tmp_path / "state.csv"
    state.write_text("badgeMetaId,customerId,earnedBadgeId,active\nm,1,e,true\n")
    ns = parse(
        "--port",
        "0",
        "--state",
        str(state),
        "--latency",
        "0.01",
        "--rate-limit",
        "100",
        "--rate-window",
        "60",
        "--unknown-badges",
        "active",
        "--seed",
        "7",
        "--throttle",
        "0.05",
        "--server-error",
        "0.02",
        "--drop",
        "0.01",
        "--inactive-400",
        "0.5",
        "--retry-after",
        "2",
    )
    environ = {"BULKREVOKE_USERNAME": "store123", "BULKREVOKE_PASSWORD": "Pass123"}
    settings = settings_from_args(ns, environ)
    assert (settings.port, settings.latency, settings.rate_limit, settings.rate_window) == (
        0,
        0.01,
        100,
        60,
    )
    assert settings.unknown_badges == "active" and settings.username == "store123"
    assert settings.client_key is None
    assert settings.state == {BadgeKey("m", "id", "1", "e"): True}
    assert settings.faults == FaultProfile(
        seed=7, throttle=0.05, server_error=0.02, drop=0.01, inactive_400=0.5, retry_after=2
    )
    assert parse().port == 8080 and parse().host == "127.0.0.1"
    with pytest.raises(ConfigError, match="BULKREVOKE_CLIENT_SECRET"):
        settings_from_args(parse(), {"BULKREVOKE_CLIENT_KEY": "k"})
    with pytest.raises(ConfigError, match="over 1"):
        settings_from_args(parse("--drop", "0.7", "--hang", "0.7"), {})


def test_every_flag_has_help_and_bad_values_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_sandbox_arguments(parser)
    flags = [action for action in parser._actions if action.option_strings and action.dest != "help"]
    assert {
        "--throttle",
        "--throttle-bare",
        "--server-error",
        "--busy",
        "--drop",
        "--hang",
        "--malformed",
        "--inactive-400",
        "--slow",
    } <= {a.option_strings[0] for a in flags}
    assert all(action.help for action in flags)
    with pytest.raises(SystemExit):
        parser.parse_args(["--drop", "1.5"])
    assert "probability" in capsys.readouterr().err


def test_loopback_warning() -> None:
    assert loopback_warning("127.0.0.1") is None
    assert loopback_warning("::1") is None
    assert loopback_warning("localhost") is None
    warning = loopback_warning("0.0.0.0")
    assert warning is not None and warning.startswith("WARNING")


def test_serve_forever_in_a_process_until_sigterm() -> None:
    code = (
        "import sys\n"
        "from bulkrevoke.sandbox import SandboxSettings, serve_forever\n"
        "sys.exit(serve_forever(SandboxSettings(port=0)))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    with subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        try:
            assert process.stdout is not None and process.stderr is not None
            line = process.stdout.readline()
            assert line.startswith("sandbox listening on http://127.0.0.1:"), process.stderr.read()
            url = line.split()[-1]
            with urllib.request.urlopen(url + "/_sandbox/truth", timeout=5) as response:
                assert json.load(response)["requests"] == 0
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=5) == 0
            assert process.stderr.read() == ""
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
