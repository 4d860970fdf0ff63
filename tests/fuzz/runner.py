"""Property-based fuzzing of every parser through its real ingress; prints the figures per parser.

    python -m tests.fuzz.runner --examples 20000          # what `make fuzz` runs
    python -m tests.fuzz.runner --examples 200 --only okta

For each parser: inputs run, outcomes, contract escapes (any exception or broken invariant, see
tests.fuzz.targets) and inputs slower than the limit (wall time of the ingress call, generation excluded).
Exit status 1 when any parser has an escape or a slow input.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import multiprocessing
import signal
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import structlog
from hypothesis import HealthCheck, Phase, given, seed, settings

from tests.fuzz.strategies import bodies, load_seeds
from tests.fuzz.targets import ConnectorTarget, IntakeTarget, run_sync

# parser -> seed folders and vendor samples (tests/data/<name>, tests/data/vendor-samples/<name>.jsonl)
CONNECTOR_SEEDS: dict[str, tuple[str, ...]] = {
    "okta": ("okta",),
    "entra": ("entra",),
    "cloudtrail": ("cloudtrail",),
    "github": ("github",),
    "k8s": ("k8s", "k8s_audit"),
    "vault": ("vault",),
}
INTAKE_SEEDS: dict[str, tuple[str, ...]] = {"servicenow": ("servicenow",), "jira": ("jira",), "generic": ("generic",)}
PARSERS = (*CONNECTOR_SEEDS, *INTAKE_SEEDS)
# An input still running after this long is reported as hung (and the run goes on).
HANG_S = 10.0


def _target(parser: str) -> tuple[Any, tuple[str, ...]]:
    if parser in CONNECTOR_SEEDS:
        return ConnectorTarget(parser), CONNECTOR_SEEDS[parser]
    return IntakeTarget(parser), INTAKE_SEEDS[parser]


@dataclass
class Figures:
    parser: str
    inputs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    escapes: int = 0
    slow: int = 0
    retimed: int = 0  # inputs over the limit once, timed twice more (the best of three counts)
    max_ms: float = 0.0
    total_s: float = 0.0
    examples: list[str] = field(default_factory=list)

    def line(self) -> str:
        outcomes = " ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items()))
        return (
            f"{self.parser:<11} inputs={self.inputs:<6} escapes={self.escapes} slow={self.slow} "
            f"retimed={self.retimed} max_ms={self.max_ms:.1f} wall_s={self.total_s:.1f} {outcomes}"
        )


def fuzz(parser: str, examples: int, slow_ms: float, random_seed: int = 0) -> Figures:
    signal.signal(signal.SIGALRM, _hung)
    target, seed_names = _target(parser)
    seeds = load_seeds(*seed_names)
    figures = Figures(parser)
    loop = asyncio.new_event_loop()
    started = time.perf_counter()

    def timed(body: bytes) -> tuple[str, float]:
        # The collector runs outside the measured call: its pauses depend on the runner's heap, not the input.
        gc.collect(0)
        gc.disable()
        begun = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, HANG_S)  # an input that never ends is an escape, not a stall
        try:
            outcome = run_sync(loop, target, body)
        except Exception as exc:  # every exception is an escape: count it, keep going
            outcome = "escape"
            figures.escapes += 1
            if len(figures.examples) < 5:
                figures.examples.append(f"{type(exc).__name__}: {str(exc)[:160]} <- {body[:160]!r}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            elapsed_ms = (time.perf_counter() - begun) * 1000
            gc.enable()
        return outcome, elapsed_ms

    @seed(random_seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(body=bodies(seeds))
    def one(body: bytes) -> None:
        outcome, elapsed_ms = timed(body)
        if elapsed_ms > slow_ms:
            # The machine is shared: an input is slow when it is slow every time, not once.
            figures.retimed += 1
            elapsed_ms = min(elapsed_ms, *(timed(body)[1] for _ in range(2)))
        figures.inputs += 1
        figures.outcomes[outcome] += 1
        figures.max_ms = max(figures.max_ms, elapsed_ms)
        if elapsed_ms > slow_ms:
            figures.slow += 1
            if len(figures.examples) < 5:
                figures.examples.append(f"slow {elapsed_ms:.0f} ms <- {body[:160]!r}")

    try:
        one()
    finally:
        loop.close()
    figures.total_s = time.perf_counter() - started
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000, help="inputs per parser")
    parser.add_argument("--slow-ms", type=float, default=100.0, help="an input slower than this counts as slow")
    parser.add_argument("--only", action="append", choices=PARSERS, help="fuzz only these parsers")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed (runs are reproducible)")
    parser.add_argument("--jobs", type=int, default=2, help="parsers fuzzed in parallel (processes)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    names = args.only or list(PARSERS)
    failed = False
    print(f"fuzzing {len(names)} parsers, {args.examples} inputs each, {args.jobs} processes", flush=True)
    # Fresh interpreters (spawn): a forked copy of this process would share hypothesis' and asyncio's state.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=context, initializer=_quiet) as pool:
        runs = [pool.submit(fuzz, name, args.examples, args.slow_ms, args.seed) for name in names]
        for run in as_completed(runs):
            figures = run.result()
            print(figures.line(), flush=True)
            for example in figures.examples:
                print(f"    {example}", flush=True)
            failed |= bool(figures.escapes or figures.slow)
    print(f"total wall time {time.perf_counter() - started:.0f} s; {'FAILED' if failed else 'ok'}", flush=True)
    return 1 if failed else 0


class Hung(Exception):
    pass


def _hung(signum: int, frame: object) -> None:
    raise Hung(f"no answer within {HANG_S} s")


def _quiet() -> None:
    # Dead letters are logged at warning level: tens of thousands of lines would drown the figures.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


if __name__ == "__main__":
    sys.exit(main())
