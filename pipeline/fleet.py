"""Progress of every worker on one run key, from the database alone (so from any machine).

A worker is a ``vaudit run``: its ``runs`` row says where and when it started, when its heartbeat last
beat (its stats, until it finishes) and whether it finished; its jobs say what it holds now (a live
lease), what it has done and how much footage that was.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime

from .store import LEASE_S, Store


@dataclass(frozen=True)
class Worker:
    run_id: int
    host: str
    pid: int | None
    owner: str | None  # the lease owner name (host or $VAUDIT_WORKER, pid, start)
    state: str  # working | idle | finished | gone (no heartbeat for longer than its lease)
    source: str | None  # the source it holds a live lease on
    done: int
    footage_s: float
    elapsed_s: float
    silent_s: float  # since its last heartbeat

    @property
    def speed(self) -> float | None:
        """Seconds of footage processed per second of wall time (× real time)."""
        return self.footage_s / self.elapsed_s if self.elapsed_s > 0 and self.done else None


@dataclass(frozen=True)
class Trouble:
    source_id: int
    path: str
    state: str  # stuck | failed | rejected
    reason: str


@dataclass
class Fleet:
    run_key: str | None
    workers: list[Worker] = field(default_factory=list)
    trouble: list[Trouble] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"run_key": self.run_key,
                           "workers": [{**asdict(w), "speed": w.speed} for w in self.workers],
                           "trouble": [asdict(t) for t in self.trouble]}, ensure_ascii=False, indent=1)


def _ts(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


def _beat(stats: str | None) -> dict:
    try:
        beat = json.loads(stats or "{}")
    except ValueError:
        return {}
    return beat if isinstance(beat, dict) else {}


def fleet(store: Store, run_key: str | None, now: float | None = None, lease_s: float = LEASE_S) -> Fleet:
    """The workers of ``run_key`` (unfinished, or finished in the last day) and its troubled sources."""
    now = time.time() if now is None else now
    out = Fleet(run_key)
    if run_key is None:
        return out
    jobs = store.query(
        """SELECT j.source_id, j.run_id, j.status, j.lease_owner, j.lease_expires, j.error, j.finished_at,
                  s.path, s.duration_s FROM jobs j JOIN sources s ON s.id = j.source_id WHERE j.run_key = ?""",
        [run_key])
    for r in store.query("SELECT id, host, pid, started_at, finished_at, stats FROM runs WHERE run_key = ?"
                         " ORDER BY id", [run_key]):
        started, finished = _ts(r["started_at"]) or now, _ts(r["finished_at"])
        if finished is not None and now - finished > 86_400:
            continue
        mine = [j for j in jobs if j["run_id"] == r["id"]]
        done = [j for j in mine if j["status"] == "done"]
        live = [j for j in mine if j["status"] == "processing" and (j["lease_expires"] or 0) >= now]
        beat = _beat(r["stats"]) if finished is None else {}
        silent = now - float(beat.get("alive_at") or started)
        if finished is not None:
            state = "finished"
        elif silent > float(beat.get("lease_s") or lease_s):
            state = "gone"  # killed, crashed or cut off from the database
        elif live:
            state = "working"
        else:
            state = "idle"
        owner = next((j["lease_owner"] for j in mine if j["lease_owner"]), None)
        out.workers.append(Worker(
            r["id"], r["host"] or "?", r["pid"], owner, state, live[0]["path"] if live else None, len(done),
            sum(j["duration_s"] or 0.0 for j in done), (finished or now) - started, 0.0 if finished else silent))
    for j in sorted(jobs, key=lambda j: j["source_id"]):
        if j["status"] == "processing" and (j["lease_expires"] or 0) < now:
            out.trouble.append(Trouble(j["source_id"], j["path"], "stuck",
                                       f"lease of {j['lease_owner']} expired {now - (j['lease_expires'] or 0):.0f} s "
                                       "ago (that worker stopped renewing it); the next worker to look takes it over"))
        elif j["status"] == "failed":
            out.trouble.append(Trouble(j["source_id"], j["path"], "failed", j["error"] or "?"))
    for s in store.query("SELECT id, path, reason FROM sources WHERE status = 'rejected' ORDER BY id"):
        out.trouble.append(Trouble(s["id"], s["path"], "rejected", s["reason"] or "?"))
    return out
