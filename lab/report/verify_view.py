"""`lab verify` as text: one [PASS]/[FAIL] line per check with its summary, then its evidence."""

from __future__ import annotations

import io

from rich.console import Console
from rich.markup import escape

from lab.verify.model import VerifyReport


def show_verify(report: VerifyReport, console: Console, evidence: bool = True) -> None:
    for c in report.checks:
        tag = "[green][PASS][/green]" if c.passed else "[red][FAIL][/red]"
        console.print(f"{tag} {c.name}: {escape(c.summary)}", highlight=False)
        for line in c.evidence if evidence else []:
            console.print(f"       {escape(line)}", style="dim" if c.passed else None, highlight=False)
    passed = sum(c.passed for c in report.checks)
    verdict = "[green]all checks passed[/green]" if report.passed else "[red]some checks failed[/red]"
    console.print(f"lab {report.lab}: {passed}/{len(report.checks)} checks passed, {verdict} "
                  f"({report.duration_s:.1f} s, marker {report.marker})", highlight=False)
    if report.pcap:
        console.print(f"capture: {report.pcap}", highlight=False)
    if report.wireshark_keys:
        console.print(f"Wireshark ESP keys: {report.wireshark_keys} (copy to ~/.config/wireshark/esp_sa)",
                      highlight=False)


def verify_text(report: VerifyReport, width: int = 200) -> str:
    """The report as plain text (for assertion messages and logs)."""
    console = Console(width=width, record=True, file=io.StringIO())
    show_verify(report, console)
    return console.export_text()
