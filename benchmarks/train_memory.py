"""Resident memory of a training run, phase by phase: `fno-forecast train` sampled from outside.

Runs the CLI in a child process and reads its resident set (and that of its own children, the DataLoader
workers) from `/proc` every `--every` seconds. A phase is the time between two lines the run prints: the
setup ends with the block of derived defaults, each epoch with its line, the lead calibration and the
skill guard with theirs. For each phase of at least `--min-seconds` it prints the seconds, the peak RSS
of the training process and of the process with its workers, the peak PSS of them all (shared pages
counted once), and the line that ended it; then the whole run's peak (the figures `/usr/bin/time -v` gives, per phase). Nothing in the run is patched: it is the
command a user runs, so the figures are the command's.

    python benchmarks/train_memory.py -- train --data /tmp/big40.zarr --out runs/big40 --max-minutes 5

Linux only (`/proc`). RSS counts shared pages (torch's libraries, about 0.4 GB) in each process.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

GIB = 2**30


def proc_bytes(pid: int, *, file: str, key: str) -> int:
    """The `key:` line (kB) of `/proc/{pid}/{file}` in bytes (0 when the process has gone)."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    return 0


def rss_bytes(pid: int) -> int:
    """The resident set of process `pid`."""
    return proc_bytes(pid, file="status", key="VmRSS")


def pss_bytes(pid: int) -> int:
    """The proportional set of `pid`: its private pages plus its share of those it shares, so that the
    sum over processes counts each page once."""
    return proc_bytes(pid, file="smaps_rollup", key="Pss")


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (its threads' children included)."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found.extend(int(child) for child in text)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return found
    return found


@dataclass
class Phase:
    """One stretch between printed lines: its start, its peaks and the line that ended it."""

    start: float
    main_peak: int = 0
    total_peak: int = 0
    pss_peak: int = 0
    end: float = 0.0
    line: str = ""


@dataclass
class Sampler:
    """Polls the process tree's RSS into the current phase; `mark(line)` closes it."""

    pid: int
    every_s: float
    started: float = field(default_factory=time.monotonic)
    phases: list[Phase] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.phases.append(Phase(start=0.0))

    def run(self) -> None:
        while not self.done.is_set():
            tree = [self.pid, *children(self.pid)]
            main = rss_bytes(self.pid)
            total = main + sum(rss_bytes(child) for child in tree[1:])
            pss = sum(pss_bytes(pid) for pid in tree)
            with self.lock:
                phase = self.phases[-1]
                phase.main_peak = max(phase.main_peak, main)
                phase.total_peak = max(phase.total_peak, total)
                phase.pss_peak = max(phase.pss_peak, pss)
            self.done.wait(self.every_s)

    def mark(self, line: str) -> None:
        now = time.monotonic() - self.started
        with self.lock:
            phase = self.phases[-1]
            phase.end, phase.line = now, line
            self.phases.append(Phase(start=now))  # its peaks from the next sample on


def merged(phases: list[Phase], *, min_seconds: float) -> list[Phase]:
    """Phases shorter than `min_seconds` folded into the next one (a block of lines printed at once)."""
    out: list[Phase] = []
    pending: Phase | None = None
    for phase in phases:
        if pending is not None:
            phase = Phase(
                start=pending.start,
                main_peak=max(pending.main_peak, phase.main_peak),
                total_peak=max(pending.total_peak, phase.total_peak),
                pss_peak=max(pending.pss_peak, phase.pss_peak),
                end=phase.end,
                line=phase.line or pending.line,
            )
        if phase.end - phase.start < min_seconds and phase is not phases[-1]:
            pending = phase
            continue
        out.append(phase)
        pending = None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=float, default=0.1, help="seconds between samples")
    parser.add_argument("--min-seconds", type=float, default=5.0, help="shortest phase shown on its own")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the fno-forecast arguments")
    args = parser.parse_args(argv)
    command = [a for a in args.command if a != "--"] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the fno-forecast arguments after --, e.g. -- train --data D --out O")
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from fno_forecast.cli import main; sys.exit(main())", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    sampler = Sampler(pid=process.pid, every_s=args.every)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    assert process.stdout is not None
    for line in process.stdout:
        print(line, end="", flush=True)
        if line.strip():
            sampler.mark(line.strip())
    code = process.wait()
    sampler.mark("(exit)")
    sampler.done.set()
    thread.join()
    phases = [p for p in sampler.phases if p.end > 0]
    print(f"\n{'from s':>8} {'seconds':>8} {'RSS GB':>7} {'+workers':>9} {'PSS all':>8}  ended by")
    for phase in merged(phases, min_seconds=args.min_seconds):
        print(
            f"{phase.start:8.0f} {phase.end - phase.start:8.1f} {phase.main_peak / 1e9:7.2f} "
            f"{phase.total_peak / 1e9:9.2f} {phase.pss_peak / 1e9:8.2f}  {phase.line[:90]}"
        )
    main_peak = max(p.main_peak for p in phases)
    total_peak = max(p.total_peak for p in phases)
    pss_peak = max(p.pss_peak for p in phases)
    print(
        f"whole run: {phases[-1].end / 60:.1f} min, peak RSS {main_peak / 1e9:.2f} GB "
        f"({main_peak / GIB:.2f} GiB), with its workers {total_peak / 1e9:.2f} GB (shared pages counted "
        f"in each), PSS of all {pss_peak / 1e9:.2f} GB ({pss_peak / GIB:.2f} GiB); exit code {code}"
    )
    return code


if __name__ == "__main__":
    raise SystemExit(main())
