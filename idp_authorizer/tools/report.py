"""Findings of ``idp-authorizer doctor`` and their plain-text report. Pure: no I/O.

A finding is ``ok``, a ``note`` (worth knowing, works) or a ``problem`` (requests will fail or be
decided wrongly), and every problem carries its fix. Text never holds a token or a secret; URLs
lose any ``user:password@`` part before they are shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

Status = Literal["ok", "note", "problem"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the report: what was checked, what was found, and for a problem, the fix."""

    status: Status
    topic: str
    message: str
    fix: str | None = None


def ok(topic: str, message: str) -> Finding:
    return Finding("ok", topic, message)


def note(topic: str, message: str) -> Finding:
    return Finding("note", topic, message)


def problem(topic: str, message: str, fix: str) -> Finding:
    return Finding("problem", topic, message, fix)


def problems(findings: Sequence[Finding]) -> int:
    return sum(f.status == "problem" for f in findings)


def render(findings: Sequence[Finding]) -> str:
    """The report: one line per finding, ``fix:`` under each problem, the verdict last."""
    labels = {"ok": "ok", "note": "note", "problem": "PROBLEM"}
    lines = []
    for finding in findings:
        lines.append(f"{labels[finding.status]:<8} {finding.topic}: {finding.message}")
        if finding.fix:
            lines.append(f"{'':<8} fix: {finding.fix}")
    count = problems(findings)
    lines.append("verdict: OK" if count == 0 else f"verdict: {count} problem(s)")
    return "\n".join(lines)


def shown_url(url: str) -> str:
    """``url`` without credentials, query or fragment (they may hold secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
