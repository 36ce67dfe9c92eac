"""Spawning and measuring processes.

Every measured process is spawned here and reaped with ``wait4``: its wall time runs from
spawn to exit, and its CPU time and peak RSS are its own (``taskset`` execs, so the pid is
the program's). The machine may be shared, so before each run the harness waits (up to
``--quiet-wait``) for other processes to go quiet, and it records the CPU they used during
the run: machine busy time (``/proc/stat``) minus the measured process, this process and
the servers started here. Every process and server started here is stopped at the end, also
on failure; a failed measurement is noted and retried once.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from benchmarks.settings import PASSWORD, USERNAME, Settings

T = TypeVar("T")
_TICK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A measurement that could not be taken (bad exit code, wrong counts, timeout)."""


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@dataclass
class Proc:
    """One measured process: how it ended and what it cost."""

    cmd: list[str]
    rc: int
    wall: float
    user: float
    sys: float
    maxrss_mb: float
    stdout: str
    stderr: str
    spawn_mono: float  # time.monotonic() at spawn (the same clock as the sandbox's arrivals)
    background: float = 0.0  # cores kept busy by other processes during the run

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    def tail(self, lines: int = 6) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()[-lines:]
        return " | ".join(text)


def machine_busy_seconds() -> float:
    """CPU-seconds all processes have spent (user + nice + system). Interrupt time
    (loopback networking's softirqs, which belong to no process) and steal are left out."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:4]
        return sum(int(x) for x in fields) / _TICK
    except (OSError, ValueError):
        return 0.0


def group_seconds(pgids: set[int]) -> float:
    """CPU-seconds of every process in the process groups *pgids*."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) in pgids:  # field 5: pgrp
            total += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return total


def client_env() -> dict[str, str]:
    """The environment of every client: this one without BULKREVOKE_* settings (they would
    change what is measured), plus the benchmark's credentials."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BULKREVOKE_") and k != "PYTHONPROFILEIMPORTTIME"
    }
    env.update(BULKREVOKE_USERNAME=USERNAME, BULKREVOKE_PASSWORD=PASSWORD)
    return env


def bulkrevoke_cmd() -> list[str]:
    """The ``bulkrevoke`` script beside this interpreter, as a user runs it."""
    script = Path(sys.executable).parent / "bulkrevoke"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bulkrevoke"]


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class Harness:
    """Runs and measures processes for one benchmark run, and owns them until it ends."""

    def __init__(self, settings: Settings, note: Callable[[str], None]) -> None:
        self.settings = settings
        self.note = note
        self.pinning = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
        self.env = client_env()
        self.bulkrevoke = bulkrevoke_cmd()
        self.background: dict[str, list[float]] = defaultdict(list)  # part → load per run
        self.part = "setup"
        self._running: set[int] = set()  # process groups started here, not yet reaped
        self._servers: set[int] = set()  # process groups of the servers (their CPU is ours)
        self._counter = itertools.count()

    def pinned(self, cmd: Sequence[str], cpu: int) -> list[str]:
        return ["taskset", "-c", str(cpu), *cmd] if self.pinning else list(cmd)

    def own_seconds(self) -> float:
        """CPU-seconds of this process and of the servers started here."""
        return time.process_time() + (group_seconds(self._servers) if self._servers else 0.0)

    def wait_for_quiet(self) -> float:
        """Wait (up to ``quiet_wait`` s) until other processes leave the machine nearly idle;
        return the background load (cores) last seen."""
        settings = self.settings
        deadline = time.monotonic() + settings.quiet_wait
        announced = False
        while True:
            busy0, own0 = machine_busy_seconds(), self.own_seconds()
            time.sleep(0.5)
            load = max(0.0, (machine_busy_seconds() - busy0) - (self.own_seconds() - own0)) / 0.5
            if load <= settings.busy_cores or time.monotonic() >= deadline:
                if announced:
                    log(f"  background load now {load:.2f} cores")
                return load
            if not announced:
                log(
                    f"  other processes keep {load:.2f} cores busy: waiting up to "
                    f"{settings.quiet_wait:g}s for quiet"
                )
                announced = True

    def run(self, cmd: Sequence[str], *, timeout: float) -> Proc:
        """Spawn *cmd* (in the work directory) and reap it with wait4."""
        work = self.settings.work
        number = next(self._counter)
        out_path, err_path = work / f".proc-{number}.out", work / f".proc-{number}.err"
        if self.settings.quiet_wait > 0:
            self.wait_for_quiet()
        busy0, own0 = machine_busy_seconds(), self.own_seconds()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            spawn_mono = time.monotonic()
            started = time.perf_counter()
            proc = subprocess.Popen(
                list(cmd),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=work,
                start_new_session=True,
            )
        self._running.add(proc.pid)
        ended, status, usage = self._reap(proc.pid, timeout)
        self._running.discard(proc.pid)
        busy, mine = machine_busy_seconds() - busy0, self.own_seconds() - own0
        result = Proc(
            cmd=list(cmd),
            rc=os.waitstatus_to_exitcode(status) if usage else -9,
            wall=(ended or time.perf_counter()) - started,
            user=usage.ru_utime if usage else 0.0,
            sys=usage.ru_stime if usage else 0.0,
            maxrss_mb=usage.ru_maxrss / 1024 if usage else 0.0,
            stdout=out_path.read_text(errors="replace"),
            stderr=err_path.read_text(errors="replace"),
            spawn_mono=spawn_mono,
        )
        result.background = max(0.0, busy - mine - result.cpu) / max(result.wall, 1e-9)
        self.background[self.part].append(result.background)
        out_path.unlink(missing_ok=True)
        err_path.unlink(missing_ok=True)
        if ended is None:
            raise BenchError(f"timed out after {timeout:g}s and was killed: {' '.join(cmd[:6])} …")
        return result

    def _reap(self, pid: int, timeout: float) -> tuple[float | None, int, resource.struct_rusage | None]:
        """(end time or None on timeout, wait status, rusage): wait4 in a thread, so that a
        timeout kills the process group and the reaping still happens."""
        done: list[tuple[float, int, resource.struct_rusage]] = []

        def reap() -> None:
            _, status, usage = os.wait4(pid, 0)
            done.append((time.perf_counter(), status, usage))

        reaper = threading.Thread(target=reap, daemon=True)
        reaper.start()
        reaper.join(timeout)
        if reaper.is_alive():
            kill_group(pid)
            reaper.join(30)
            return None, 0, done[0][2] if done else None
        return done[0]

    def start_server(
        self, cmd: Sequence[str], *, stdout: int | IO[bytes] = subprocess.DEVNULL
    ) -> subprocess.Popen[bytes]:
        """Start a server in its own process group, counted as ours in the background load."""
        proc = subprocess.Popen(
            list(cmd),
            stdout=stdout,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.settings.work,
            start_new_session=True,
        )
        self._running.add(proc.pid)
        self._servers.add(proc.pid)
        return proc

    def stop_server(self, proc: subprocess.Popen[bytes], how: int = signal.SIGTERM) -> None:
        """Ask a server to stop, kill what is left of its group after 5 s."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(how)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                kill_group(proc.pid)
                proc.wait(5)
        kill_group(proc.pid)  # a worker left behind by its master, if any
        self._running.discard(proc.pid)
        self._servers.discard(proc.pid)

    def cleanup(self) -> None:
        """Kill every process group started here that is still running."""
        for pgid in list(self._running):
            kill_group(pgid)
            self._running.discard(pgid)
        self._servers.clear()

    def attempt(self, label: str, measure: Callable[[], T]) -> T | None:
        """Run one measurement; on failure note it, wait, retry once (the package may be
        edited while benchmarks run, so a failure may be transient). None if both failed."""
        for number in (1, 2):
            try:
                return measure()
            except BenchError as exc:
                self.note(f"{label}: attempt {number} failed: {exc}")
            except Exception as exc:  # a bug here or in the package: keep the other parts going
                last = traceback.format_exc(limit=3).splitlines()[-1]
                self.note(f"{label}: attempt {number} raised {exc!r}: {last}")
            if number == 1:
                log(f"{label}: waiting {self.settings.retry_wait:g}s before one retry")
                time.sleep(self.settings.retry_wait)
        return None
