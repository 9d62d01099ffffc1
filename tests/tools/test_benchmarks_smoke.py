"""The benchmark scripts keep working: each ``--smoke`` run, as a subprocess, at tiny sizes.

Decisions are asserted (every valid token allowed, every invalid one refused), timings never: the
numbers of a smoke run mean nothing. The three run at once: about 30 s on an idle 2-core machine.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
TIMEOUT = 240


class Smoke:
    """The three smoke runs, started together (they mostly wait on process start-up and imports)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        scripts = {
            "cold_start": ["cold_start.py", "--smoke", "--out", str(out / "cold_start.md")],
            # With the shared Redis tier, as users run it (it found the key-rotation bug in jwks.py).
            "load": ["load.py", "--smoke", "--out-dir", str(out), "--no-progress"],
            "warm_path": ["warm_path.py", "--smoke", "--no-npm-install", "--out", str(out / "warm.md")],
        }
        self.procs = {
            name: subprocess.Popen(
                [sys.executable, str(BENCH / argv[0]), *argv[1:]],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name, argv in scripts.items()
            if (BENCH / argv[0]).exists()
        }

    def result(self, name: str) -> tuple[str, str]:
        proc = self.procs.get(name)
        if proc is None:
            pytest.skip(f"benchmarks/{name}.py not in this tree")
        try:
            stdout, stderr = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        assert proc.returncode == 0, f"exit {proc.returncode}\n{stdout[-3000:]}\n{stderr[-3000:]}"
        return stdout, stderr

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Smoke]:
    runs = Smoke(tmp_path_factory.mktemp("benchmarks"))
    yield runs
    runs.close()


def test_cold_start_smoke(smoke: Smoke) -> None:
    _, stderr = smoke.result("cold_start")
    assert "the handler allowed the valid token in every run" in stderr
    report = (smoke.out / "cold_start.md").read_text()
    for row in ("bare interpreter", "4 deps, redis importable", "4 deps, redis blocked", "handler import"):
        assert re.search(rf"^\| {re.escape(row)}[^|]* \| \d", report, re.M), f"no measurement for {row!r}"
    assert re.search(r"^\| handler \+ first decision \| [\d.]+ .*\| no \|$", report, re.M), "redis imported?"
    assert "Problems:" not in report
    # On-demand against a simulated SnapStart restore (issue 14): the on-demand first decision asked the IdP
    # for discovery and the key set; the restored child, whose INIT prefetched, asked it nothing.
    on_demand = re.search(r"^\| on-demand: [^|]* \| [\d.]+ [^|]* \| - \| [\d.]+ [^|]* \| (\S+) \|", report, re.M)
    restored = re.search(
        r"^\| SnapStart \(simulated\)[^|]* \| [\d.]+ [^|]* \| [\d.]+ [^|]* \| [\d.]+ [^|]* \| (\S+) \|", report, re.M
    )
    assert on_demand is not None and restored is not None, report
    assert (on_demand[1], restored[1]) == ("2", "0")
    assert re.search(r"^\| handler over the floor, same process \| \d", report, re.M)
    assert "### What the handler import adds over the floor" in report
    assert re.search(r"^\| idp_authorizer\.handler \| [\d.]+ \|$", report, re.M), "no per-module breakdown"


def test_load_smoke(smoke: Smoke) -> None:
    _, stderr = smoke.result("load")
    assert "every decision was right" in stderr
    report = (smoke.out / "load_smoke.md").read_text()
    match = re.search(r"decisions right / wrong / exceptions \| ([\d,]+) / (\d+) / (\d+)", report)
    assert match is not None, report
    assert int(match[1].replace(",", "")) == 400 and match[2] == "0" and match[3] == "0"
    assert re.search(r"IdP calls: key set \(JWKS\) \| [1-9]", report), "no key-set fetch counted"


def test_warm_path_smoke(smoke: Smoke) -> None:
    report, stderr = smoke.result("warm_path")
    assert "all decisions correct" in stderr
    # The introspection-cache row ran, refused what the authorization server refutes, and asked the
    # server once per distinct token (20 timed, the warm-up ones, 7 negatives), not once per call.
    line = next(line for line in report.splitlines() if line.startswith("- ours-introspected:"))
    assert (
        "20/20 valid accepted; refused tampered_payload, bad_signature, alg_none, wrong_iss, wrong_aud, expired;"
        in line
    )
    warmup = len((BENCH / "data" / "warmup-RS256.txt").read_text().split())
    assert f"introspection calls per process {20 + warmup + 7} " in line
