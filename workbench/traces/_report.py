"""What an ingest did, and its summary for a terminal."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_ERRORS = 100


@dataclass
class IngestReport:
    """What an ingest did: files, spans read, stored, duplicate, skipped, and why."""

    files: int = 0
    spans_read: int = 0
    stored: int = 0
    duplicates: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def spans_per_s(self) -> float:
        """Spans read per second of wall time."""
        return self.spans_read / self.seconds if self.seconds > 0 else 0.0

    def _error(self, message: str, count: int = 1) -> None:
        """Note a malformed record (or ``count`` spans refused with it)."""
        self.skipped += count
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(message)


def render_text(report: IngestReport) -> str:
    """A few lines for a terminal: the counts, then the malformed records (capped)."""
    files = f"{report.files} file{'' if report.files == 1 else 's'}"
    lines = [
        f"ingested {files}: {report.spans_read:,} spans read, {report.stored:,} stored, "
        f"{report.duplicates:,} duplicates, {report.skipped:,} skipped "
        f"in {report.seconds:.2f} s ({report.spans_per_s:,.0f} spans/s)"
    ]
    lines.extend(f"  {e}" for e in report.errors)
    if report.skipped > len(report.errors):  # (an error may have refused several spans)
        lines.append(f"  ... and {report.skipped - len(report.errors):,} more malformed records")
    return "\n".join(lines)
