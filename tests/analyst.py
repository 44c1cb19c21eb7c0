"""A script that plays the analyst from ground truth, through the same functions the review app calls:
confirm what matches a true violation, reject what does not (false detection), add what the model missed
(drawn on the middle frame of its ground-truth span, with its true box) and trim it to its true span."""

from __future__ import annotations

from pipeline import annotate
from pipeline.config import Config
from pipeline.records import Decision
from pipeline.scoring import score_events
from pipeline.store import Store
from pipeline.workspace import Workspace


def review_source(ws: Workspace, store: Store, cfg: Config, source_id: int, gt: dict, user: str = "ana") -> dict:
    found = store.query("SELECT v.id, v.category, v.start_s, v.end_s FROM violations v JOIN sources s"
                        " ON s.id = v.source_id WHERE v.source_id = ? AND v.run_id = s.current_run_id"
                        " AND v.origin = 'model' ORDER BY v.id", [source_id])
    score = score_events(found, gt["violations"])
    false = {id(x) for x in score.false_alarms}
    counts = {"confirmed": 0, "rejected": 0, "added": 0}
    for v in found:
        if id(v) in false:
            store.record_decision(Decision(v["id"], user, "reject", reason="false_detection"))
            counts["rejected"] += 1
        else:
            store.record_decision(Decision(v["id"], user, "confirm"))
            counts["confirmed"] += 1
    for miss in score.misses:
        times = sorted(miss["boxes"], key=float)
        t = times[len(times) // 2]
        vid = annotate.add_missed(ws, store, cfg, source_id, float(t), tuple(miss["boxes"][t]), miss["category"], user)
        store.record_decision(Decision(vid, user, "trim", start_s=miss["start_s"], end_s=max(miss["end_s"], miss["start_s"] + 0.1)))
        counts["added"] += 1
    return counts
