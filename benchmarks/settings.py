"""What a benchmark run is configured by: the command line's choices, as one frozen value
passed down to every part, and the fixed names (paths, credentials, cores)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
USERNAME, PASSWORD = "bench", "bench-password"
# With two cores or more, servers run on the first and the client under test on the second.
SERVER_CPU, CLIENT_CPU = 0, 1


@dataclass(frozen=True, kw_only=True)
class Settings:
    """One benchmark run's choices (see ``run.py --help``)."""

    parts: tuple[str, ...]
    quick: bool = False
    rounds: int | None = None  # every part's rounds; None: each part's own default
    retry_wait: float = 60.0  # before the one retry of a failed measurement
    quiet_wait: float = 30.0  # before each measured run, waiting for other processes to go quiet
    busy_cores: float = 0.25  # a run with more background load than this is marked disturbed
    pace_rates: tuple[float, ...] = (100.0, 500.0, 1000.0, 2000.0)
    latencies: tuple[float, ...] = (0.02, 0.25, 0.5)  # seconds, for the latency part
    work: Path = HERE / "work"
    results: Path | None = HERE / "RESULTS.md"

    def rounds_for(self, full: int, quick: int) -> int:
        """A part's rounds: ``--rounds`` when given, else its full or quick default."""
        if self.rounds is not None:
            return self.rounds
        return quick if self.quick else full
