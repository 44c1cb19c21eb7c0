"""Read-only SQL for the review workstation.

User input reaches SQL only as bound parameters; the only SQL text chosen by a request is an ORDER BY
picked from the fixed ``SORTS`` table by key. Writes never happen here: they go through ``Store``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from ..config import Config
from ..store import Store
from ..vocab import Status

STATUSES = tuple(Status)
PER_PAGE = 50
# sort key -> ORDER BY text; v.id last so equal keys page deterministically
SORTS = {
    "time": "datetime(v.start_time), v.start_s, v.id",
    "-time": "datetime(v.start_time) DESC, v.start_s DESC, v.id DESC",
    "confidence": "v.confidence, v.id",
    "-confidence": "v.confidence DESC, v.id",
    # least sure first: confidence nearest its category's threshold (the function is registered per app)
    "uncertain": "abs(v.confidence - vaudit_threshold(v.detected_category)), v.id",
}


def register_thresholds(store: Store, cfg: Config) -> None:
    """Make the config's per-category thresholds readable in SQL as ``vaudit_threshold(category)``."""
    thresholds = {c: cc.confidence for c, cc in cfg.categories.items()}
    store.define_lookup("vaudit_threshold", thresholds, 0.5)
PENDING_FIRST = "CASE v.status WHEN 'pending' THEN 0 ELSE 1 END"

_COLUMNS = """
    v.id, v.category, v.detected_category, s.district, s.inspector, s.path AS source_path,
    s.sha256 AS source_sha256, v.start_s, v.end_s, v.start_time, v.end_time, v.confidence, v.status, v.hits,
    v.run_id, v.source_id, v.best_t_s, v.x1, v.y1, v.x2, v.y2, v.origin, v.added_by, s.width, s.height,
    clip.path AS clip_path, clip.sha256 AS clip_sha256, clip.start_s AS clip_start_s,
    proxy.path AS proxy_path, kf.path AS keyframe_path, kf.sha256 AS keyframe_sha256"""
_FROM = """
    FROM violations v JOIN sources s ON s.id = v.source_id
    LEFT JOIN artifacts clip ON clip.violation_id = v.id AND clip.kind = 'clip'
    LEFT JOIN artifacts proxy ON proxy.violation_id = v.id AND proxy.kind = 'proxy'
    LEFT JOIN artifacts kf ON kf.violation_id = v.id AND kf.kind = 'keyframe'"""


@dataclass(frozen=True)
class Filters:
    """Queue filters as typed values; anything unparseable from the URL is dropped, not guessed."""

    district: str = ""
    category: str = ""
    date_from: str = ""  # YYYY-MM-DD in the configured time zone, inclusive
    date_to: str = ""  # inclusive
    source: str = ""  # substring of the source path, or its full SHA-256
    min_conf: str = ""  # decimal text of a number in [0, 1]
    status: str = ""  # "" means every status
    sort: str = "time"

    @classmethod
    def parse(cls, params: Mapping[str, str], cfg: Config) -> Filters:
        def text(key: str) -> str:
            return (params.get(key) or "").strip()[:200]

        return cls(
            district=text("district"),
            category=text("category") if text("category") in cfg.categories else "",
            date_from=text("date_from") if _is_date(text("date_from")) else "",
            date_to=text("date_to") if _is_date(text("date_to")) else "",
            source=text("source"),
            min_conf=text("min_conf") if _is_confidence(text("min_conf")) else "",
            status=text("status") if text("status") in STATUSES else "",
            sort=text("sort") if text("sort") in SORTS else "time",
        )

    def query_string(self, **overrides: str) -> str:
        """The non-default filters as a URL query, so links and redirects keep the analyst's view."""
        values = asdict(replace(self, **overrides))
        defaults = asdict(Filters())
        return urlencode({k: v for k, v in values.items() if v != defaults[k]})

    def where(self, tz: ZoneInfo) -> tuple[str, list]:
        """WHERE clause text (fixed fragments only) and its bound parameters."""
        clauses, params = ["v.run_id = s.current_run_id"], []
        if self.district:
            clauses.append("s.district = ?")
            params.append(self.district)
        if self.category:
            clauses.append("v.category = ?")
            params.append(self.category)
        if self.date_from:
            clauses.append("datetime(v.start_time) >= ?")
            params.append(_utc_midnight(self.date_from, tz, 0))
        if self.date_to:
            clauses.append("datetime(v.start_time) < ?")
            params.append(_utc_midnight(self.date_to, tz, 1))
        if self.source:
            clauses.append("(instr(s.path, ?) > 0 OR s.sha256 = ?)")
            params += [self.source, self.source.lower()]
        if self.min_conf:
            clauses.append("v.confidence >= ?")
            params.append(float(self.min_conf))
        if self.status:
            clauses.append("v.status = ?")
            params.append(self.status)
        return " AND ".join(clauses), params


def _is_date(s: str) -> bool:
    try:
        date.fromisoformat(s)
    except ValueError:
        return False
    return len(s) == 10


def _is_confidence(s: str) -> bool:
    try:
        return 0.0 <= float(s) <= 1.0
    except ValueError:
        return False


def _utc_midnight(day: str, tz: ZoneInfo, plus_days: int) -> str:
    """Local midnight of ``day`` (+n days) as SQLite's UTC ``datetime()`` text, so offsets compare right."""
    local = datetime.combine(date.fromisoformat(day) + timedelta(days=plus_days), time(), tz)
    return local.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def queue_count(store: Store, f: Filters, tz: ZoneInfo) -> int:
    where, params = f.where(tz)
    return store.query(f"SELECT count(*) AS n FROM violations v JOIN sources s ON s.id = v.source_id WHERE {where}",
                       params)[0]["n"]


def queue_page(store: Store, f: Filters, tz: ZoneInfo, page: int) -> list[dict]:
    """One page (1-based) of the queue: pending first, then the chosen sort."""
    where, params = f.where(tz)
    return store.query(
        f"SELECT {_COLUMNS} {_FROM} WHERE {where} ORDER BY {PENDING_FIRST}, {SORTS[f.sort]} LIMIT ? OFFSET ?",
        [*params, PER_PAGE, (page - 1) * PER_PAGE],
    )


def all_matching(store: Store, f: Filters, tz: ZoneInfo) -> list[dict]:
    """Every violation the filters match, in queue order (for export)."""
    where, params = f.where(tz)
    return store.query(f"SELECT {_COLUMNS} {_FROM} WHERE {where} ORDER BY {PENDING_FIRST}, {SORTS[f.sort]}", params)


def status_counts(store: Store, f: Filters, tz: ZoneInfo) -> dict[str, int]:
    """Counts per status under every filter except the status filter itself."""
    where, params = replace(f, status="").where(tz)
    counts = dict.fromkeys(STATUSES, 0)
    for r in store.query(
        f"SELECT v.status, count(*) AS n FROM violations v JOIN sources s ON s.id = v.source_id WHERE {where}"
        " GROUP BY v.status", params,
    ):
        counts[r["status"]] = r["n"]
    return counts


def neighbours(store: Store, f: Filters, tz: ZoneInfo, vid: int) -> dict:
    """Previous/next id and 1-based position of ``vid`` in the filtered queue order (j/k navigation)."""
    where, params = f.where(tz)
    rows = store.query(
        f"""WITH q AS (
              SELECT v.id, ROW_NUMBER() OVER w AS pos, LAG(v.id) OVER w AS prev_id, LEAD(v.id) OVER w AS next_id
              FROM violations v JOIN sources s ON s.id = v.source_id WHERE {where}
              WINDOW w AS (ORDER BY {PENDING_FIRST}, {SORTS[f.sort]}))
            SELECT pos, prev_id, next_id, (SELECT count(*) FROM q) AS total FROM q WHERE id = ?""",
        [*params, vid],
    )
    return rows[0] if rows else {"pos": None, "prev_id": None, "next_id": None, "total": None}


def next_pending(store: Store, f: Filters, tz: ZoneInfo, vid: int) -> int | None:
    """The pending violation after ``vid`` in sort order (wrapping round), ignoring the status filter,
    so that finishing one item opens the next one still to do."""
    where, params = replace(f, status="").where(tz)
    rows = store.query(
        f"""WITH q AS (
              SELECT v.id, v.status, ROW_NUMBER() OVER (ORDER BY {SORTS[f.sort]}) AS rn
              FROM violations v JOIN sources s ON s.id = v.source_id WHERE {where})
            SELECT id FROM q WHERE status = 'pending' AND id != ?
            ORDER BY rn > coalesce((SELECT rn FROM q WHERE id = ?), 0) DESC, rn LIMIT 1""",
        [*params, vid, vid],
    )
    return rows[0]["id"] if rows else None


def violation(store: Store, vid: int) -> dict | None:
    rows = store.query(f"SELECT {_COLUMNS} {_FROM} WHERE v.id = ?", [vid])
    return rows[0] if rows else None


def same_source(store: Store, v: dict) -> list[dict]:
    """The other violations this run found in the same footage, in footage order."""
    return store.query(
        "SELECT id, category, status, start_s, end_s, start_time, confidence FROM violations"
        " WHERE source_id = ? AND run_id = ? AND id != ? ORDER BY start_s, id",
        [v["source_id"], v["run_id"], v["id"]],
    )


def history(store: Store, vid: int) -> list[dict]:
    return store.query("SELECT * FROM decisions WHERE violation_id = ? ORDER BY id", [vid])


def is_artifact(store: Store, rel: str) -> bool:
    """Only files the evidence DB knows as artifacts are ever served."""
    return bool(store.query("SELECT 1 AS ok FROM artifacts WHERE path = ?", [rel]))


def districts(store: Store) -> list[str]:
    """Districts present in the data (the configured ones are offered too, by the caller)."""
    return [r["district"] for r in store.query(
        "SELECT DISTINCT district FROM sources WHERE district IS NOT NULL ORDER BY district")]


def users(store: Store) -> list[dict]:
    return store.query("SELECT name, role, disabled, created_at FROM users ORDER BY name")


# -- frames (labelling what the model missed) ---------------------------------------------------


def frame(store: Store, fid: int) -> dict | None:
    """A sampled frame with its source (width, height, media), and whether it is the source's current run."""
    rows = store.query(
        "SELECT f.id, f.source_id, f.run_id, f.t_s, s.path AS source_path, s.sha256 AS source_sha256, s.width,"
        " s.height, s.rotation, s.district, s.current_run_id, s.original_copy,"
        " (SELECT count(*) FROM frames g WHERE g.source_id = f.source_id AND g.run_id = f.run_id"
        "  AND (g.t_s < f.t_s OR (g.t_s = f.t_s AND g.id <= f.id))) AS pos,"
        " (SELECT count(*) FROM frames g WHERE g.source_id = f.source_id AND g.run_id = f.run_id) AS total"
        " FROM frames f JOIN sources s ON s.id = f.source_id WHERE f.id = ?", [fid])
    return rows[0] if rows else None


def frame_near(store: Store, source_id: int, run_id: int, t_s: float | None) -> int | None:
    """The run's sampled frame closest to ``t_s`` (a violation's keyframe time)."""
    rows = store.query("SELECT id FROM frames WHERE source_id = ? AND run_id = ? ORDER BY abs(t_s - ?), id LIMIT 1",
                       [source_id, run_id, t_s or 0.0])
    return rows[0]["id"] if rows else None


def frame_steps(store: Store, f: dict) -> dict:
    """Previous and next sampled frame of the same source and run (``[`` / ``]``)."""
    prev = store.query("SELECT id FROM frames WHERE source_id = ? AND run_id = ? AND (t_s < ? OR (t_s = ? AND id < ?))"
                       " ORDER BY t_s DESC, id DESC LIMIT 1", [f["source_id"], f["run_id"], f["t_s"], f["t_s"], f["id"]])
    nxt = store.query("SELECT id FROM frames WHERE source_id = ? AND run_id = ? AND (t_s > ? OR (t_s = ? AND id > ?))"
                      " ORDER BY t_s, id LIMIT 1", [f["source_id"], f["run_id"], f["t_s"], f["t_s"], f["id"]])
    return {"prev_id": prev[0]["id"] if prev else None, "next_id": nxt[0]["id"] if nxt else None}


def frame_boxes(store: Store, f: dict) -> list[dict]:
    """What is already boxed on a frame: the run's detections that became violations, and violations an
    analyst drew on (or corrected at) this very time. Each with its violation's id, category and status."""
    found = store.query(
        "SELECT v.id, v.category, v.status, v.origin, d.x1, d.y1, d.x2, d.y2 FROM detections d"
        " JOIN violations v ON v.id = d.violation_id WHERE d.frame_id = ? ORDER BY v.id", [f["id"]])
    drawn = store.query(
        "SELECT v.id, v.category, v.status, v.origin, v.x1, v.y1, v.x2, v.y2 FROM violations v"
        " WHERE v.source_id = ? AND v.run_id = ? AND v.origin = 'analyst' AND abs(v.best_t_s - ?) < 0.02",
        [f["source_id"], f["run_id"], f["t_s"]])
    return found + drawn


def frame_marks(store: Store, fid: int) -> list[dict]:
    return store.query("SELECT user, created_at FROM frame_reviews WHERE frame_id = ? ORDER BY id", [fid])


def model_figures(store: Store) -> dict:
    """Per category, the current results (each source's latest run) against the analysts' decisions: what the
    model found and analysts confirmed or rejected, what analysts added (the model's misses), what waits.
    precision = confirmed / (confirmed + rejected); recall = confirmed / (confirmed + added)."""
    rows = store.query(
        """SELECT v.category, v.origin, v.status, count(*) AS n FROM violations v JOIN sources s ON s.id = v.source_id
           WHERE v.run_id = s.current_run_id GROUP BY 1, 2, 3""")
    out: dict[str, dict] = {}
    for r in rows:
        c = out.setdefault(r["category"], {"confirmed": 0, "rejected": 0, "pending": 0, "added": 0})
        key = "added" if r["origin"] == "analyst" else r["status"]
        c[key] += r["n"]
    for c in out.values():
        decided = c["confirmed"] + c["rejected"]
        c["precision"] = c["confirmed"] / decided if decided else None
        c["recall"] = c["confirmed"] / (c["confirmed"] + c["added"]) if c["confirmed"] + c["added"] else None
    models = store.query(
        """SELECT r.model_path, r.model_sha256, count(DISTINCT s.id) AS sources FROM sources s
           JOIN runs r ON r.id = s.current_run_id GROUP BY 1, 2 ORDER BY sources DESC""")
    return {"categories": out, "models": models}
