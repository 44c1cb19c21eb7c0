"""Exports: counts (csv/json/xlsx), charts and the exposure-meeting pack, on a real built workspace.

The workspace holds known violations in three districts over October-December 2026 with all three
review statuses, so every number below is worked out by hand from ``PLANTED``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from builders import Known, build_workspace

from pipeline import config as config_mod
from pipeline.export import counts, parse_period, write_counts

CN = timezone(timedelta(hours=8))
UTC = timezone.utc
A, B, C = "城关镇", "东城街道", "西湖乡"
ROOT = Path(__file__).resolve().parent.parent


def _k(district, category, capture, start_s, status, key):
    return Known(district, category, capture, start_s, start_s + 1.5, 0.8, status, key)


# (source key, footage seconds we give it) -> violations; a source's violations share its capture start
PLANTED = [
    # November 2026, the reporting period
    _k(A, "garbage", datetime(2026, 11, 5, 9, 0, tzinfo=CN), 1.0, "confirmed", "a_nov"),
    _k(A, "garbage", datetime(2026, 11, 5, 9, 0, tzinfo=CN), 3.0, "confirmed", "a_nov"),
    _k(A, "stall", datetime(2026, 11, 5, 9, 0, tzinfo=CN), 5.0, "pending", "a_nov"),
    # 23:30 local on 30 Nov is 15:30 UTC: still November
    _k(A, "parking", datetime(2026, 11, 30, 23, 29, 58, tzinfo=CN), 2.0, "confirmed", "a_edge_nov"),
    _k(B, "garbage", datetime(2026, 11, 10, 14, 0, tzinfo=CN), 1.0, "confirmed", "b_nov"),
    _k(B, "stall", datetime(2026, 11, 10, 14, 0, tzinfo=CN), 3.0, "confirmed", "b_nov"),
    _k(B, "stall", datetime(2026, 11, 10, 14, 0, tzinfo=CN), 5.0, "confirmed", "b_nov"),
    # recorded in UTC: 16:10 UTC on 31 Oct is 00:10 on 1 Nov local, so November
    _k(C, "parking", datetime(2026, 10, 31, 16, 9, 58, tzinfo=UTC), 2.0, "confirmed", "c_nov_utc"),
    _k(C, "garbage", datetime(2026, 10, 31, 16, 9, 58, tzinfo=UTC), 4.0, "rejected", "c_nov_utc"),
    # 00:30 local on 1 Dec (16:30 UTC on 30 Nov, stored with +00:00): December
    _k(A, "parking", datetime(2026, 11, 30, 16, 29, 58, tzinfo=UTC), 2.0, "confirmed", "a_edge_dec"),
    # October 2026, the previous period
    _k(A, "garbage", datetime(2026, 10, 15, 10, 0, tzinfo=CN), 2.0, "confirmed", "a_oct"),
    _k(B, "garbage", datetime(2026, 10, 20, 10, 0, tzinfo=CN), 1.0, "confirmed", "b_oct"),
    _k(B, "parking", datetime(2026, 10, 20, 10, 0, tzinfo=CN), 3.0, "confirmed", "b_oct"),
    _k(B, "stall", datetime(2026, 10, 20, 10, 0, tzinfo=CN), 5.0, "rejected", "b_oct"),
]
FOOTAGE_S = {"a_nov": 1800, "a_edge_nov": 1800, "b_nov": 5400, "c_nov_utc": 1800, "a_edge_dec": 3600,
             "a_oct": 900, "b_oct": 900}

# November, confirmed: district -> (garbage, parking, stall, total, rank, previous, change, change %, hours, /h)
EXPECTED = {
    A: (2, 1, 0, 3, 1, 1, 2, 200.0, 1.0, 3.0),
    B: (1, 0, 2, 3, 1, 2, 1, 50.0, 1.5, 2.0),
    C: (0, 1, 0, 1, 3, 0, 1, None, 0.5, 2.0),
}
CATEGORY_TOTALS = {"暴露垃圾": (3, 2, 1, 50.0), "违规停车": (2, 1, 1, 100.0), "占道经营": (2, 0, 2, None)}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    ws, store = build_workspace(tmp, PLANTED)
    with store.tx() as c:  # realistic footage lengths, keyed by each source's file name
        for key, seconds in FOOTAGE_S.items():
            c.execute("UPDATE sources SET duration_s = ? WHERE path LIKE ?", (seconds, f"%/{key}.mp4"))
    yield ws, store, config_mod.load()
    store.close()


@pytest.fixture(scope="module")
def november(built):
    _, _, cfg = built
    return parse_period("2026-11", cfg.tz)


def test_periods_parse_and_step_back():
    p = parse_period("2026-11")
    assert (p.start.isoformat(), p.end.isoformat()) == ("2026-11-01T00:00:00+08:00", "2026-12-01T00:00:00+08:00")
    assert parse_period("2026-01").previous().label == "2025-12"
    q = parse_period("2026-q1")
    assert (q.label, q.end.month, q.previous().label) == ("2026-Q1", 4, "2025-Q4")
    y = parse_period("2026", "UTC")
    assert (y.start.isoformat(), y.end.year, y.previous().label) == ("2026-01-01T00:00:00+00:00", 2027, "2025")
    assert [m.label for m in parse_period("2026-Q1").last_months(4)] == ["2025-12", "2026-01", "2026-02", "2026-03"]
    for bad, why in [("2026-13", "month must be 01-12"), ("2026-Q5", "quarter must be Q1-Q4"),
                     ("Nov 2026", "use YYYY-MM")]:
        with pytest.raises(ValueError, match=why):
            parse_period(bad)


def test_counts_table(built, november):
    _, store, cfg = built
    t = counts(store, cfg, november)
    assert [c.label for c in t.columns] == ["暴露垃圾", "违规停车", "占道经营"]
    got = {r.label: (*r.cells.values(), r.total, r.rank, r.previous, r.change, r.change_pct, r.footage_h,
                     r.per_hour) for r in t.rows}
    assert got == EXPECTED
    assert [r.label for r in t.rows] == [A, B, C]  # by rank; the tie keeps config order
    assert {c.label: (c.total, c.previous, c.change, c.change_pct) for c in t.columns} == CATEGORY_TOTALS
    assert (t.total, t.previous_total, t.change, t.change_pct, t.footage_h) == (7, 3, 4, 133.3, 3.0)
    assert t.undated == 0
    everything = counts(store, cfg, november, status="all")
    assert {r.label: r.total for r in everything.rows} == {A: 4, B: 3, C: 2}
    assert [r.rank for r in everything.rows] == [1, 2, 3]


def test_time_zone_edges(built):
    _, store, cfg = built
    dec = counts(store, cfg, parse_period("2026-12", cfg.tz))
    assert {r.label: r.total for r in dec.rows} == {A: 1, B: 0, C: 0}
    assert {r.label: r.footage_h for r in dec.rows} == {A: 1.0, B: 0.0, C: 0.0}
    # the same data counted in UTC moves both edge violations: 23:30 +08 is 15:30 UTC (still Nov),
    # 00:10 +08 on 1 Nov is 31 Oct UTC, 00:30 +08 on 1 Dec is 30 Nov UTC
    in_utc = counts(store, cfg, parse_period("2026-11", "UTC"))
    assert {r.label: r.total for r in in_utc.rows} == {A: 4, B: 3, C: 0}


def _sql_count(store, start_utc: str, end_utc: str) -> dict[tuple[str, str], int]:
    """Independent of the export code: SQLite's own datetime() normalises any offset to UTC."""
    rows = store.query(
        """SELECT s.district, v.category, count(*) n FROM violations v JOIN sources s ON s.id = v.source_id
           WHERE v.run_id = s.current_run_id AND v.status = 'confirmed'
             AND datetime(v.start_time) >= ? AND datetime(v.start_time) < ?
           GROUP BY 1, 2""", [start_utc, end_utc])
    return {(r["district"], r["category"]): r["n"] for r in rows}


def test_counts_agree_with_direct_sql(built, november):
    _, store, cfg = built
    for label, start, end in [("2026-11", "2026-10-31 16:00:00", "2026-11-30 16:00:00"),
                              ("2026-10", "2026-09-30 16:00:00", "2026-10-31 16:00:00"),
                              ("2026-Q4", "2026-09-30 16:00:00", "2026-12-31 16:00:00")]:
        t = counts(store, cfg, parse_period(label, cfg.tz))
        ours = {(r.key, c): n for r in t.rows for c, n in r.cells.items() if n}
        assert ours == _sql_count(store, start, end), label
        assert t.total == sum(ours.values())


def test_counts_by_category_only(built, november):
    _, store, cfg = built
    t = counts(store, cfg, november, by=("category",))
    assert [(r.label, r.total, r.rank, r.footage_h) for r in t.rows] == [
        ("暴露垃圾", 3, 1, None), ("违规停车", 2, 2, None), ("占道经营", 2, 2, None)]
    with pytest.raises(ValueError, match="bad breakdown"):
        counts(store, cfg, november, by=("inspector",))
    with pytest.raises(ValueError, match="bad status"):
        counts(store, cfg, november, status="maybe")


def _num(text: str) -> float | None:
    return float(text) if text else None


def test_csv_json_xlsx_agree_with_the_table(built, november, tmp_path):
    from openpyxl import load_workbook

    _, store, cfg = built
    t = counts(store, cfg, november)
    raw = write_counts(t, "csv", tmp_path / "c.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel then reads the Chinese as UTF-8
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0] == ["排名", "区域", "暴露垃圾", "违规停车", "占道经营", "合计", "上期(2026-10)", "增减", "增减%",
                       "巡查时长(小时)", "每小时违规数"]
    for r in rows[1:-1]:
        g, p, s, total, rank, prev, change, pct, hours, per_h = EXPECTED[r[1]]
        assert [int(x) for x in (r[2], r[3], r[4], r[5], r[0], r[6], r[7])] == [g, p, s, total, rank, prev, change]
        assert (_num(r[8]), _num(r[9]), _num(r[10])) == (pct, hours, per_h)
    assert rows[-1][1:] == ["合计", "3", "2", "2", "7", "3", "4", "133.3", "3.0", "2.33"]

    data = json.loads(write_counts(t, "json", tmp_path / "c.json").read_text(encoding="utf-8"))
    assert (data["period"], data["previous_period"], data["total"], data["timezone"]) == (
        "2026-11", "2026-10", 7, "Asia/Shanghai")
    assert {r["label"]: (*r["cells"].values(), r["total"], r["rank"], r["previous"], r["change"], r["change_pct"],
                         r["footage_h"], r["per_hour"]) for r in data["rows"]} == EXPECTED

    wb = load_workbook(write_counts(t, "xlsx", tmp_path / "c.xlsx"))
    assert wb.sheetnames == ["汇总", "按区域", "按类别", "说明"]
    grid = [list(r) for r in wb["汇总"].iter_rows(values_only=True)]
    assert grid[0] == ["区域", "暴露垃圾", "违规停车", "占道经营", "合计"]
    assert {r[0]: tuple(r[1:]) for r in grid[1:]} == {
        **{d: (e[0], e[1], e[2], e[3]) for d, e in EXPECTED.items()}, "合计": (3, 2, 2, 7)}
    ranking = [list(r) for r in wb["按区域"].iter_rows(values_only=True)]
    assert ranking[1:] == [[e[4], d, e[3], e[5], e[6], e[7], e[8], e[9]] for d, e in EXPECTED.items()]
    by_cat = [list(r) for r in wb["按类别"].iter_rows(values_only=True)]
    assert {r[0]: tuple(r[1:]) for r in by_cat[1:]} == CATEGORY_TOTALS
    for ws in wb.worksheets:  # formatted for people: bold frozen header, columns wide enough for the Chinese
        assert ws.freeze_panes == "A2"
        assert all(c.font.bold for c in ws[1])
        assert ws.column_dimensions["A"].width >= 2 * len(str(ws["A1"].value))
    with pytest.raises(ValueError, match="bad format"):
        write_counts(t, "pdf", tmp_path / "c.pdf")
