"""The sandbox's HTTP endpoints: revokeEarn, the badge read, OAuth tokens and the truth dump.

revokeEarn, in order: count it; check auth (a 401 changes nothing); read the body and,
if it names a badge, count the request on the badge; apply the rate limit (a 429
changes nothing); refuse an invalid body; answer 521 if another request for the same
customer is being handled (``overlap``); then let the fault decision say what happens.
A revoke is applied when the decision is taken, before any latency, so a client that
times out during the wait has still revoked the badge — as with the real API. The badge
read (``reads``) passes the same auth, rate limit and customer rule, and reads the truth
when it is admitted.

The handler stays lean for benchmarks: no logging, canned bodies, one hash per request
only when faults are configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import secrets
import time

from aiohttp import web

from bulkrevoke.sandbox import replies
from bulkrevoke.sandbox.auth import Authenticator
from bulkrevoke.sandbox.faults import Decision, Fault, FaultPicker
from bulkrevoke.sandbox.overlap import Customer, CustomerLocks, Hold
from bulkrevoke.sandbox.ratelimit import build_limit
from bulkrevoke.sandbox.reads import READ_PATH, ReadAnswers, parse_read
from bulkrevoke.sandbox.replies import ApiError
from bulkrevoke.sandbox.revoke_request import IDENTIFIER_HEADER, RevokeRequest, parse_revoke
from bulkrevoke.sandbox.settings import SandboxSettings
from bulkrevoke.sandbox.truth import NO_ANSWER, BadgeRecord, TruthRecorder

REVOKE_PATH = "/api_gateway/v1/badges/customer/revokeEarn"
TOKEN_PATH = "/v3/oauth/token/generate"
TRUTH_PATH = "/_sandbox/truth"
REQUEST_ID_HEADER = "X-Cap-Requestid"

_APPLYING = (None, Fault.DROP, Fault.HANG, Fault.MALFORMED)
_GATEWAY_STATUSES = (502, 504)


class SandboxEndpoints:
    """The state of one sandbox server and the handlers that act on it."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.truth = TruthRecorder(dict(settings.state), unknown_active=settings.unknown_badges == "active")
        self._auth = Authenticator(settings)
        self._limit = (
            build_limit(
                settings.rate_limit_kind,
                settings.rate_limit,
                settings.rate_window,
                settings.rate_burst,
            )
            if settings.rate_limit is not None
            else None
        )
        self._locks = CustomerLocks(enabled=settings.busy_on_overlap)
        self._reads = ReadAnswers(self.truth, settings.read_shape)
        self._faults = settings.faults
        self._picker = FaultPicker(settings.faults)
        self._jitter = random.Random(settings.faults.seed)
        # A per-server prefix keeps request ids unique across sandboxes in one test run.
        self._request_ids = map(f"sbx-{secrets.token_hex(4)}-{{:08x}}".format, itertools.count(1))
        # Set by stop(): wakes hung requests so shutdown is quick.
        self.closing = asyncio.Event()

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_post(REVOKE_PATH, self.revoke_earn)
        app.router.add_get(READ_PATH, self.read_badge)
        app.router.add_post(TOKEN_PATH, self.generate_token)
        app.router.add_get(TRUTH_PATH, self.dump_truth)
        # A signal, not per-handler code, so aiohttp's own 404/405/500 answers carry one too.
        app.on_response_prepare.append(self._stamp_request_id)
        return app

    async def _stamp_request_id(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers[REQUEST_ID_HEADER] = next(self._request_ids)

    async def dump_truth(self, request: web.Request) -> web.Response:
        return replies.json_body(self.truth.snapshot().to_json())

    async def generate_token(self, request: web.Request) -> web.Response:
        try:
            data = json.loads(await request.read())
        except ValueError:
            return replies.error(400, 400, "Request body is not valid JSON")
        key = data.get("key") if isinstance(data, dict) else None
        secret = data.get("secret") if isinstance(data, dict) else None
        if not isinstance(key, str) or not isinstance(secret, str):
            return replies.error(400, 400, "key and secret are mandatory")
        token = self._auth.issue_token(key, secret)
        if token is None:
            return replies.error(401, 401, "Invalid Credentials")
        self.truth.tokens_issued += 1
        ttl = self._auth.ttl
        issued = {"accessToken": token, "ttlSeconds": int(ttl) if ttl == int(ttl) else ttl}
        return replies.json_body({"data": issued, "errors": None})

    async def revoke_earn(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        truth = self.truth
        truth.requests += 1
        refusal = self._auth.check(request.headers)
        if refusal is not None:
            truth.unauthorized += 1
            return await self._deliver(request, arrived, replies.error(401, 401, refusal))
        parsed: RevokeRequest | None = None
        error: ApiError | None = None
        try:
            parsed = parse_revoke(await request.read(), request.headers.get(IDENTIFIER_HEADER))
        except ApiError as exc:
            error = exc
        record = None
        if parsed is not None:
            record = truth.record_for(parsed.key)
            record.requests += 1
        over_quota = self._over_quota(arrived)
        if over_quota is not None:
            return await self._deliver(request, arrived, over_quota)
        if error is not None:
            return await self._deliver(request, arrived, error.response())
        assert parsed is not None and record is not None  # parse_revoke returned or raised
        key = parsed.key
        hold = self._locks.hold(Customer(key.identifier_type, key.customer_id))
        if hold is None:
            return await self._overlapping(request, arrived)
        try:
            # Taken after the overlap check, so that 521s (which depend on timing, like
            # 429s) don't shift the faults of later requests.
            decision = self._picker.decide(key, record.decisions)
            record.decisions += 1
            if decision.fault in _APPLYING:
                return await self._process(request, arrived, parsed, record, decision, hold)
            return await self._refuse(request, arrived, record, decision)
        finally:
            hold.release()

    async def read_badge(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        self.truth.reads += 1
        refusal = self._auth.check(request.headers)
        if refusal is not None:
            self.truth.unauthorized += 1
            return await self._deliver(request, arrived, replies.error(401, 401, refusal))
        over_quota = self._over_quota(arrived)
        if over_quota is not None:
            return await self._deliver(request, arrived, over_quota)
        try:
            read = parse_read(
                request.match_info["customerId"],
                request.match_info["badgeMetaId"],
                request.headers.get(IDENTIFIER_HEADER),
                request.query.get("includeStatistics"),
            )
        except ApiError as exc:
            return await self._deliver(request, arrived, exc.response())
        hold = self._locks.hold(read.customer)
        if hold is None:
            return await self._overlapping(request, arrived)
        try:
            try:
                data = self._reads.answer(read)
            except ApiError as exc:
                return await self._deliver(request, arrived, exc.response())
            body = {"data": data, "errors": [], "warnings": []}
            return await self._deliver(request, arrived, replies.json_body(body))
        finally:
            hold.release()

    def _over_quota(self, arrived: float) -> web.Response | None:
        """The 429 to answer if the rate limit refuses this request, else None."""
        if self._limit is None:
            return None
        wait = self._limit.admit(arrived)
        if wait is None:
            return None
        self.truth.throttled += 1
        self.truth.quota_throttled += 1
        return replies.throttled(
            wait if self.settings.limit_retry_after else None, as_date=self._faults.retry_after_date
        )

    async def _overlapping(self, request: web.Request, arrived: float) -> web.StreamResponse:
        """521: another request for this customer is being handled; nothing is applied."""
        self.truth.busy_overlap += 1
        return await self._deliver(request, arrived, replies.error(521, *replies.BUSY))

    async def _refuse(
        self, request: web.Request, arrived: float, record: BadgeRecord, decision: Decision
    ) -> web.StreamResponse:
        """A fault that answers without touching the badge."""
        fault = decision.fault
        if fault is Fault.THROTTLE:
            self.truth.throttled += 1
            response = replies.throttled(self._faults.retry_after, as_date=self._faults.retry_after_date)
        elif fault is Fault.THROTTLE_BARE:
            self.truth.throttled += 1
            response = replies.throttled(None)
        elif fault is Fault.BUSY:
            self.truth.busy_injected += 1
            response = replies.error(521, *replies.BUSY)
        elif fault is Fault.NOT_READ:
            response = replies.not_read()
        elif fault is Fault.GATEWAY_PAGE:
            response = replies.gateway_page()
        else:
            status = decision.server_status
            response = replies.error(status, status, replies.SERVER_ERRORS[status])
        delivered = await self._deliver(request, arrived, response, slow=decision.slow)
        if delivered.status in _GATEWAY_STATUSES:
            record.gateway_errors += 1
        return delivered

    async def _process(
        self,
        request: web.Request,
        arrived: float,
        parsed: RevokeRequest,
        record: BadgeRecord,
        decision: Decision,
        hold: Hold,
    ) -> web.StreamResponse:
        """Revoke the badge if it is active, then answer — or fail to, as the fault says."""
        applied = record.active
        if applied:
            record.active = False
            record.applied += 1
            record.revoked_at = time.time()
        fault = decision.fault
        if fault is Fault.DROP or fault is Fault.HANG:
            record.lost_answers += 1
            if fault is Fault.HANG:
                self.truth.request_log.append((arrived, NO_ANSWER))
                # The action is done; only its answer is lost. Holding the customer for
                # the whole hang would turn the client's retry into a 521.
                hold.release()
                await self._hang()
            else:
                await self._wait(decision.slow)
                self.truth.request_log.append((arrived, NO_ANSWER))
            return _hang_up(request)
        if fault is Fault.MALFORMED:
            record.lost_answers += 1
            return await self._deliver(request, arrived, replies.malformed(), slow=decision.slow)
        if applied:
            key = parsed.key
            response = replies.revoked(key.badge_meta_id, parsed.customer_id, key.earned_badge_id)
        else:
            status = 400 if decision.inactive_400 else 200
            response = replies.error(status, *replies.NOT_ACTIVE)
        delivered = await self._deliver(request, arrived, response, slow=decision.slow)
        if delivered is not response:
            record.lost_answers += 1  # the client left before the answer was ready
        elif applied:
            record.successes += 1
        return delivered

    async def _deliver(
        self, request: web.Request, arrived: float, response: web.Response, *, slow: bool = False
    ) -> web.StreamResponse:
        """Wait out the latency, log, and return ``response`` — or, if the client has gone
        meanwhile, a placeholder that is never sent (``is not response`` tells the caller)."""
        await self._wait(slow)
        transport = request.transport
        if transport is None or transport.is_closing():
            self.truth.request_log.append((arrived, NO_ANSWER))
            return web.Response(status=499)
        self.truth.request_log.append((arrived, response.status))
        if self._faults.gzip:
            response.enable_compression()  # gzip or deflate, as the request accepts
        return response

    async def _wait(self, slow: bool) -> None:
        seconds = self.settings.latency
        if self.settings.latency_jitter:
            seconds += self._jitter.uniform(0, self.settings.latency_jitter)
        if slow:
            seconds += self._faults.slow_seconds
        if seconds > 0:
            await asyncio.sleep(seconds)

    async def _hang(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.closing.wait(), self._faults.hang_seconds)


def _hang_up(request: web.Request) -> web.StreamResponse:
    """Close the connection without answering.

    aiohttp then fails to write the returned placeholder, treats that as the client
    having gone away, and stays quiet — which is exactly the silence we want.
    """
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=499)
