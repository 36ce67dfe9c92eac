"""One action per customer at a time, as Capillary enforces it.

The real service answers ``521 Multiple actions are running for the same customer`` when a
request for a customer arrives while another request for that customer (identifier type and
value) is being handled. The sandbox does the same: a request holds its customer from the
moment it gets past the rate limit until its answer is ready, latency included.

A hold is released by its owner only: a request that gave its customer up early (a hung
answer, whose action is already done) must not, on its way out, release the customer that a
later request now holds.
"""

from __future__ import annotations

from typing import NamedTuple


class Customer(NamedTuple):
    identifier_type: str
    customer_id: str  # canonical: "00042" and 42 are one customer of type id


class Hold:
    """A request's claim on its customer; ``release()`` may be called more than once."""

    __slots__ = ("_customer", "_held")

    def __init__(self, held: dict[Customer, Hold], customer: Customer) -> None:
        self._held = held
        self._customer = customer

    def release(self) -> None:
        if self._held.get(self._customer) is self:
            del self._held[self._customer]


class CustomerLocks:
    """The customers with a request being handled right now.

    Disabled (``enabled=False``), every request gets a hold that holds nothing.
    """

    __slots__ = ("_free", "_held")

    def __init__(self, *, enabled: bool = True) -> None:
        self._held: dict[Customer, Hold] = {}
        # Its own empty table, so that its release() never finds itself: a no-op.
        self._free = None if enabled else Hold({}, Customer("", ""))

    def hold(self, customer: Customer) -> Hold | None:
        """The customer's hold, or None if another request holds it (answer 521)."""
        if self._free is not None:
            return self._free
        if customer in self._held:
            return None
        hold = self._held[customer] = Hold(self._held, customer)
        return hold

    def __len__(self) -> int:
        return len(self._held)
