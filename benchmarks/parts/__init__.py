"""The measured parts, one module each, in the order a full run takes them.

Each part is a function of a ``Bench`` (settings, harness, report) that adds figures with
their targets to the report. ``fixed_server`` parts run while the fixed-response server is
up; it is stopped before the others, which start their own servers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.bench import Bench
from benchmarks.parts import customers, latency, overhead, pace, profile, quota, rate, scale, startup


@dataclass(frozen=True)
class Part:
    name: str
    run: Callable[[Bench], None]
    minutes: str  # roughly, with the default rounds (full mode)
    fixed_server: bool = False


PARTS = (
    Part("startup", startup.run, "1"),
    Part("overhead", overhead.run, "2", fixed_server=True),
    Part("profile", profile.run, "3", fixed_server=True),
    Part("hiding", latency.run_hiding, "2"),
    Part("rate", rate.per_second_and_minute, "5"),
    Part("scale", scale.run, "2"),
    Part("pace", pace.run, "5"),
    Part("minute", quota.run_minute, "4"),
    Part("auto", quota.run_auto, "2"),
    Part("customers", customers.run, "1"),
    Part("latency", latency.run_latency, "3"),
)
BY_NAME = {part.name: part for part in PARTS}
