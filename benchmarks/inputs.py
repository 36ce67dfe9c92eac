"""Inputs and arrival arithmetic.

Inputs are valid rows with the header ``badgeMetaId,customerId,earnedBadgeId``: 24-hex
ids, numeric customerIds, every earnedBadgeId unique. ``generate_csv`` gives every row its
own customer (up to 100,000 rows; the block repeats after that); ``generate_grouped_csv``
gives each customer many badges, one after the other, as a fraud export sorted by customer
does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

HEADER = b"badgeMetaId,customerId,earnedBadgeId\n"
BADGE_META = b"5f0c1a2b3c4d5e6f70819203"  # the same for every row
LINE_WIDTH = 60  # 24 meta + , + 9 digits + , + 24 earned + \n


def generate_csv(path: Path, rows: int, block: int = 100_000) -> Path:
    """Valid rows, fast: a numpy block of fixed-width lines whose earnedBadgeId prefix is
    rewritten per block (f"{block:018x}{j:06x}", so every earnedBadgeId is unique).
    An existing file of the right size is reused."""
    import numpy as np

    if path.exists() and path.stat().st_size == len(HEADER) + LINE_WIDTH * rows:
        return path
    lines = np.empty((block, LINE_WIDTH), dtype=np.uint8)
    lines[:, 0:24] = np.frombuffer(BADGE_META, np.uint8)
    lines[:, 24] = lines[:, 34] = ord(",")
    customers = b"".join(b"%09d" % (100_000_000 + k) for k in range(block))
    lines[:, 25:34] = np.frombuffer(customers, np.uint8).reshape(block, 9)
    suffixes = b"".join(b"%06x" % k for k in range(block))
    lines[:, 53:59] = np.frombuffer(suffixes, np.uint8).reshape(block, 6)
    lines[:, 59] = ord("\n")
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        out.write(HEADER)
        for number in range((rows + block - 1) // block):
            lines[:, 35:53] = np.frombuffer(b"%018x" % number, np.uint8)
            count = min(block, rows - number * block)
            out.write(lines[:count].tobytes())
    tmp.replace(path)
    return path


def generate_grouped_csv(path: Path, customers: int, per_customer: int) -> Path:
    """``customers`` × ``per_customer`` valid rows, sorted by customer: each customer's
    badges are consecutive rows."""
    with open(path, "wb") as out:
        out.write(HEADER)
        for customer in range(customers):
            for badge in range(per_customer):
                earned = b"%012x%012x" % (0xC0FFEE000000 + customer, badge)
                out.write(b"%s,%09d,%s\n" % (BADGE_META, 200_000_000 + customer, earned))
    return path


def max_in_window(times: Sequence[float], width: float) -> int:
    """Most arrivals in any window (t - width, t] of sorted *times*: two pointers."""
    best = start = 0
    for end, t in enumerate(times):
        while t - times[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best


def rate_over_run(times: Sequence[float]) -> float:
    """(n - 1) / (last - first) of sorted arrival *times*: requests per second."""
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
