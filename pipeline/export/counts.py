"""Violation counts per district and category for a period: the numbers townships are ranked by.

Counted by the wall-clock time a violation was filmed (``start_time``) in the configured zone, only
for violations of each source's current run (an older run's output is superseded, not extra
violations). Every district in the config gets a row even with nothing found, because a township
with zero violations still takes its place in the ranking.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from .. import vocab
from ..config import Config
from ..store import Store
from ..vocab import UNKNOWN_DISTRICT, Status
from .cells import csv_row, inert_xlsx_cells
from .periods import Period

DIMENSIONS = ("district", "category")
STATUSES = (*Status, "all")  # "all": every status
DIMENSION_ZH = {"district": "区域", "category": "类别"}
# a period filter on ISO strings must allow for any UTC offset (at most 14 h) before exact comparison
_PAD = timedelta(days=1)


@dataclass(frozen=True)
class Row:
    """One row of the ranking: a district (or a category when ``by`` starts with category)."""

    key: str
    label: str
    cells: dict[str, int]  # column key -> count; empty when there is no column dimension
    total: int
    rank: int
    previous: int
    change: int
    change_pct: float | None  # None when the previous period had none (no meaningful percentage)
    footage_h: float | None  # hours of processed footage captured in the period; None for category rows
    per_hour: float | None


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    total: int
    previous: int
    change: int
    change_pct: float | None


@dataclass(frozen=True)
class CountsTable:
    period: str
    period_zh: str
    previous_period: str
    start: str
    end: str
    timezone: str
    status: str
    by: tuple[str, ...]
    columns: list[Column]
    rows: list[Row]
    total: int
    previous_total: int
    change: int
    change_pct: float | None
    footage_h: float
    undated: int  # matching violations whose capture time is unknown: they belong to no period

    def to_dict(self) -> dict:
        return asdict(self)


def dated_violations(store: Store, start: datetime, end: datetime, status: str) -> list[dict]:
    """Current violations filmed in ``[start, end)``, each with its local ``when``."""
    sql = """SELECT v.id, v.category, v.start_time, s.district FROM violations v JOIN sources s ON s.id = v.source_id
             WHERE v.run_id = s.current_run_id AND v.start_time >= ? AND v.start_time < ?
               AND (? = 'all' OR v.status = ?)"""
    rows = store.query(sql, [(start - _PAD).date().isoformat(), (end + _PAD).date().isoformat(), status, status])
    out = []
    for r in rows:
        when = datetime.fromisoformat(r["start_time"]).astimezone(start.tzinfo)
        if start <= when < end:
            out.append({**r, "district": r["district"] or UNKNOWN_DISTRICT, "when": when})
    return out


def _undated(store: Store, status: str) -> int:
    sql = """SELECT count(*) n FROM violations v JOIN sources s ON s.id = v.source_id
             WHERE v.run_id = s.current_run_id AND v.start_time IS NULL AND (? = 'all' OR v.status = ?)"""
    return store.query(sql, [status, status])[0]["n"]


def footage_seconds(store: Store, period: Period) -> dict[str, float]:
    """Seconds of footage per district whose capture started in the period.

    Only sources the detector has processed count: footage not yet looked at was not inspected, and
    counting it would make a district's rate look better than it is.
    """
    sql = """SELECT district, duration_s, capture_start FROM sources
             WHERE status = 'ready' AND current_run_id IS NOT NULL AND capture_start >= ? AND capture_start < ?"""
    rows = store.query(sql, [(period.start - _PAD).date().isoformat(), (period.end + _PAD).date().isoformat()])
    out: Counter[str] = Counter()
    for r in rows:
        if period.contains(datetime.fromisoformat(r["capture_start"])):
            out[r["district"] or UNKNOWN_DISTRICT] += r["duration_s"] or 0.0
    return dict(out)


def competition_ranks(totals: dict[str, int]) -> dict[str, int]:
    """1 = most; equal totals share a rank and the next rank skips (1, 1, 3)."""
    return {k: 1 + sum(1 for t in totals.values() if t > v) for k, v in totals.items()}


def _pct(now: int, before: int) -> float | None:
    return round(100.0 * (now - before) / before, 1) if before else None


def _keys(dim: str, cfg: Config, found: set[str]) -> list[str]:
    """Configured districts/categories first (in config order), then any others found in the data."""
    configured = list(cfg.districts) if dim == "district" else list(cfg.categories)
    return configured + sorted(found - set(configured))


def _label(dim: str, key: str, cfg: Config) -> str:
    if dim == "category" and key in cfg.categories:
        return cfg.categories[key].zh
    return key


def counts(store: Store, cfg: Config, period: Period, by: tuple[str, ...] = ("district", "category"),
           status: str = "confirmed") -> CountsTable:
    """Counts for ``period`` broken down by ``by`` (rows, then optional columns), with totals, ranks,
    change against the previous period and, for district rows, footage hours and violations per hour."""
    if not 1 <= len(by) <= 2 or any(d not in DIMENSIONS for d in by) or len(set(by)) != len(by):
        raise ValueError(f"bad breakdown {by!r}: use district, category or both (e.g. district,category)")
    if status not in STATUSES:
        raise ValueError(f"bad status {status!r}: use one of {', '.join(STATUSES)}")
    prev = period.previous()
    now = dated_violations(store, period.start, period.end, status)
    before = dated_violations(store, prev.start, prev.end, status)
    row_dim, col_dim = by[0], by[1] if len(by) == 2 else None
    rows_now, rows_before = Counter(v[row_dim] for v in now), Counter(v[row_dim] for v in before)
    cells = Counter((v[row_dim], v[col_dim]) for v in now) if col_dim else Counter()
    row_keys = _keys(row_dim, cfg, set(rows_now) | set(rows_before))
    col_keys = _keys(col_dim, cfg, {v[col_dim] for v in now + before}) if col_dim else []
    footage = footage_seconds(store, period) if row_dim == "district" else {}
    ranks = competition_ranks({k: rows_now[k] for k in row_keys})
    rows = []
    for k in row_keys:
        hours = footage.get(k, 0.0) / 3600 if row_dim == "district" else None
        rows.append(Row(
            key=k, label=_label(row_dim, k, cfg),
            cells={c: cells[(k, c)] for c in col_keys},
            total=rows_now[k], rank=ranks[k], previous=rows_before[k], change=rows_now[k] - rows_before[k],
            change_pct=_pct(rows_now[k], rows_before[k]),
            footage_h=round(hours, 3) if hours is not None else None,
            per_hour=round(rows_now[k] / hours, 2) if hours else None,
        ))
    rows.sort(key=lambda r: (r.rank, row_keys.index(r.key)))
    cols_now = Counter(v[col_dim] for v in now) if col_dim else Counter()
    cols_before = Counter(v[col_dim] for v in before) if col_dim else Counter()
    columns = [Column(c, _label(col_dim, c, cfg), cols_now[c], cols_before[c], cols_now[c] - cols_before[c],
                      _pct(cols_now[c], cols_before[c])) for c in col_keys]
    return CountsTable(
        period=period.label, period_zh=period.label_zh, previous_period=prev.label,
        start=period.start.isoformat(), end=period.end.isoformat(), timezone=str(period.tz), status=status,
        by=tuple(by), columns=columns, rows=rows, total=len(now), previous_total=len(before),
        change=len(now) - len(before), change_pct=_pct(len(now), len(before)),
        footage_h=round(sum(footage.values()) / 3600, 3), undated=_undated(store, status),
    )


STATUS_ZH = {**vocab.STATUS_ZH, "all": "全部"}
FORMATS = ("csv", "xlsx", "json")


def _trend_headers(table: CountsTable) -> list[str]:
    return [f"上期({table.previous_period})", "增减", "增减%"]


def _has_footage(table: CountsTable) -> bool:
    return table.by[0] == "district"


def wide_rows(table: CountsTable) -> list[list]:
    """One table with everything per row (the CSV): rank, name, cells, total, change, footage, a total row."""
    dim = DIMENSION_ZH[table.by[0]]
    footage_h = ["巡查时长(小时)", "每小时违规数"] if _has_footage(table) else []
    header = ["排名", dim, *(c.label for c in table.columns), "合计", *_trend_headers(table), *footage_h]
    out: list[list] = [header]
    for r in table.rows:
        footage = [r.footage_h, r.per_hour] if _has_footage(table) else []
        out.append([r.rank, r.label, *r.cells.values(), r.total, r.previous, r.change, r.change_pct, *footage])
    per_hour = round(table.total / table.footage_h, 2) if table.footage_h else None
    footage = [table.footage_h, per_hour] if _has_footage(table) else []
    out.append([None, "合计", *(c.total for c in table.columns), table.total, table.previous_total, table.change,
                table.change_pct, *footage])
    return out


def sheets(table: CountsTable) -> dict[str, list[list]]:
    """The workbook's sheets, each one breakdown a person reads on its own."""
    row_zh = DIMENSION_ZH[table.by[0]]
    grid = [[row_zh, *(c.label for c in table.columns), "合计"]]
    grid += [[r.label, *r.cells.values(), r.total] for r in table.rows]
    grid.append(["合计", *(c.total for c in table.columns), table.total])
    footage_h = ["巡查时长(小时)", "每小时违规数"] if _has_footage(table) else []
    ranking = [["排名", row_zh, "违规数", *_trend_headers(table), *footage_h]]
    for r in table.rows:
        footage = [r.footage_h, r.per_hour] if _has_footage(table) else []
        ranking.append([r.rank, r.label, r.total, r.previous, r.change, r.change_pct, *footage])
    out = {"汇总": grid, f"按{row_zh}": ranking}
    if len(table.by) == 2:
        col_zh = DIMENSION_ZH[table.by[1]]
        out[f"按{col_zh}"] = [[col_zh, "违规数", *_trend_headers(table)]] + [
            [c.label, c.total, c.previous, c.change, c.change_pct] for c in table.columns]
    out["说明"] = [["项目", "内容"], ["统计周期", f"{table.period_zh} ({table.period})"],
                  ["起止(含起不含止)", f"{table.start} — {table.end}"], ["时区", table.timezone],
                  ["统计口径", f"{STATUS_ZH[table.status]}的违规，按拍摄时间(当地时间)计"],
                  ["对比周期", table.previous_period], ["无拍摄时间未计入", table.undated]]
    return out


def write_counts(table: CountsTable, fmt: str, path: Path) -> Path:
    """Write the table as csv (UTF-8 with BOM, so Excel shows the Chinese), json, or a formatted xlsx."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        with open(path, "w", encoding="utf-8-sig", newline="") as f:
            csv.writer(f).writerows(csv_row(r) for r in wide_rows(table))
    elif fmt == "json":
        path.write_text(json.dumps(table.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    elif fmt == "xlsx":
        _write_xlsx(sheets(table), path)
    else:
        raise ValueError(f"bad format {fmt!r}: use one of {', '.join(FORMATS)}")
    return path


def _display_width(value: object) -> int:
    """Characters as Excel shows them: CJK characters take two columns."""
    text = "" if value is None else str(value)
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _write_xlsx(data: dict[str, list[list]], path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in data.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
        inert_xlsx_cells(ws)  # a district named "=HYPERLINK(...)" stays text
        for cell in ws[1]:
            cell.font = Font(bold=True)
            cell.alignment = Alignment(horizontal="center")
        if rows and "合计" in rows[-1][:2]:  # the totals row
            for cell in ws[ws.max_row]:
                cell.font = Font(bold=True)
        ws.freeze_panes = "A2"
        for i in range(1, ws.max_column + 1):
            width = max(_display_width(r[i - 1]) for r in rows if len(r) >= i)
            ws.column_dimensions[get_column_letter(i)].width = min(60, width + 3)
    wb.save(path)
