"""Reporting periods: ``2026-11``, ``2026-Q4`` or ``2026`` as half-open local-time intervals.

Assessment counts follow the wall clock of the city being inspected, not UTC: a violation filmed at
23:30 on the last day of the month belongs to that month even though it is already the next day in
UTC. So every period is ``[start, end)`` in the configured zone, and callers compare tz-aware
datetimes, never date strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

_FORMS = "use YYYY-MM (2026-11), YYYY-Qn (2026-Q4) or YYYY (2026)"
_PATTERN = re.compile(r"^(\d{4})(?:-(?:(\d{1,2})|[Qq](\d)))?$")


@dataclass(frozen=True)
class Period:
    """A month, quarter or year; ``kind`` is "month", "quarter" or "year"."""

    kind: str
    year: int
    index: int  # month 1-12, quarter 1-4, or 1 for a year
    tz: tzinfo

    @property
    def label(self) -> str:
        return {"month": f"{self.year}-{self.index:02d}", "quarter": f"{self.year}-Q{self.index}",
                "year": f"{self.year}"}[self.kind]

    @property
    def label_zh(self) -> str:
        return {"month": f"{self.year}年{self.index}月", "quarter": f"{self.year}年第{self.index}季度",
                "year": f"{self.year}年"}[self.kind]

    @property
    def first_month(self) -> int:
        return {"month": self.index, "quarter": 3 * self.index - 2, "year": 1}[self.kind]

    @property
    def months(self) -> int:
        return {"month": 1, "quarter": 3, "year": 12}[self.kind]

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.first_month, 1, tzinfo=self.tz)

    @property
    def end(self) -> datetime:
        return _month_start(self.year, self.first_month + self.months, self.tz)

    def contains(self, when: datetime) -> bool:
        return self.start <= when < self.end

    def previous(self) -> Period:
        """The period of the same kind just before (2026-01 -> 2025-12, 2026-Q1 -> 2025-Q4)."""
        per_year = 12 // self.months
        y, i = (self.year, self.index - 1) if self.index > 1 else (self.year - 1, per_year)
        return Period(self.kind, y, i, self.tz)

    def last_months(self, n: int) -> list[Period]:
        """The ``n`` months ending with this period's last month, oldest first (for trend charts)."""
        last = self.year * 12 + self.first_month + self.months - 2  # months since year 0, zero-based
        return [Period("month", m // 12, m % 12 + 1, self.tz) for m in range(last - n + 1, last + 1)]


def _month_start(year: int, month: int, tz: tzinfo) -> datetime:
    """Local midnight on the 1st; ``month`` may run past 12 into the following years."""
    return datetime(year + (month - 1) // 12, (month - 1) % 12 + 1, 1, tzinfo=tz)


def parse_period(text: str, tz: tzinfo | str = "Asia/Shanghai") -> Period:
    """Parse a period argument; raises ValueError with a one-line message saying what is allowed."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    m = _PATTERN.match(text.strip())
    if not m:
        raise ValueError(f"bad period {text!r}: {_FORMS}")
    year, month, quarter = int(m[1]), m[2], m[3]
    if not 1900 <= year <= 9998:
        raise ValueError(f"bad period {text!r}: year {year} is out of range")
    if month is not None:
        if not 1 <= int(month) <= 12:
            raise ValueError(f"bad period {text!r}: month must be 01-12")
        return Period("month", year, int(month), zone)
    if quarter is not None:
        if not 1 <= int(quarter) <= 4:
            raise ValueError(f"bad period {text!r}: quarter must be Q1-Q4")
        return Period("quarter", year, int(quarter), zone)
    return Period("year", year, 1, zone)
