"""One request per customer in flight: a bounded look-ahead over the pending rows.

Capillary answers 521 ("Multiple actions are running for the same customer") when two
requests for one customer overlap, and a fraud export lists tens of badges per customer,
sorted by customer. The send phase therefore never hands out a row whose customer
already has one queued or in flight; it looks ahead (at most ``limit`` rows, so memory
stays flat) for rows of other customers to keep every worker busy.

Rows wait in one queue per customer, in row order; customers free to go are kept in the
order they became free (insertion-ordered dict), so handing out a row and releasing a
customer are O(1) whatever the window holds. Report order is not affected: the report is
written by row number.
"""

from __future__ import annotations

from collections import deque

from bulkrevoke.model import PendingRow

CustomerKey = tuple[str, str]


def customer_key(row: PendingRow) -> CustomerKey:
    """Who a row's request acts on: the identifier type and value. Values other than
    numeric ids are compared without case (an email's case may not matter to the API:
    treating two spellings as one customer only costs a little parallelism)."""
    if row.identifier_type == "id":
        return ("id", row.customer_id)
    return (row.identifier_type, row.customer_id.lower())


class CustomerWindow:
    """Pending rows by customer; ``take`` hands out rows of customers not held."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free: dict[CustomerKey, deque[PendingRow]] = {}
        self._held: dict[CustomerKey, deque[PendingRow]] = {}
        self.waiting = 0  # rows in the window, not yet handed out

    @property
    def room(self) -> int:
        return self.limit - self.waiting

    @property
    def held(self) -> int:
        return len(self._held)

    def add(self, row: PendingRow) -> None:
        key = customer_key(row)
        rows = self._held.get(key)
        if rows is None:
            rows = self._free.setdefault(key, deque())
        rows.append(row)
        self.waiting += 1

    def take(self, most: int) -> list[PendingRow]:
        """Up to *most* rows, each of a different customer that is not held; their
        customers are held until ``release``."""
        taken: list[PendingRow] = []
        while len(taken) < most and self._free:
            key = next(iter(self._free))
            rows = self._free.pop(key)
            taken.append(rows.popleft())
            self._held[key] = rows
        self.waiting -= len(taken)
        return taken

    def release(self, row: PendingRow) -> None:
        """*row* is done (or given up): its customer's next row may go."""
        key = customer_key(row)
        rows = self._held.pop(key, None)
        if rows:
            self._free[key] = rows
