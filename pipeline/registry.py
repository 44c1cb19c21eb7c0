"""The model registry (``vaudit models``): which weights exist, where they came from, how they measure on
the office's own reviewed footage, and which one later runs use.

Models are recorded once per SHA-256 in the evidence DB (parent, the dataset manifest they were tuned on,
the command, figures), with a custody entry. ``compare`` replays the pipeline (sample, detect, track,
judge: nothing written) on held-out reviewed sources and scores the events against the analysts'
decisions: confirmed and added violations are the truth. ``promote`` makes a model the default for later
runs only when it is at least as good on both recall and precision as the current default, or when
forced with a reason; either way the custody log names who promoted what. Earlier runs keep the model
they recorded and their results; the promoted model is a new run key, as any other model change is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .detect import YoloDetector
from .events import violations_from
from .hashing import sha256_file
from .scoring import EventScore, score_events
from .store import Store
from .track import MotionEstimator
from .workspace import Workspace


class RegistryError(ValueError):
    """A model that is not there, a promotion refused, nothing to compare on."""


@dataclass(frozen=True)
class Figures:
    model: str
    sha256: str
    score: EventScore

    def as_dict(self) -> dict:
        s = self.score
        return {"model": self.model, "sha256": self.sha256, "recall": round(s.recall, 4),
                "precision": round(s.precision, 4), "matched": s.matched, "truth": s.truth, "predicted": s.predicted}


def register(store: Store, path: Path, user: str, parent: Path | None = None, manifest: Path | None = None,
             command: str | None = None, figures: dict | None = None) -> str:
    """Record ``path`` (and its parent, if given and not yet known) in the registry; returns its SHA-256."""
    path = Path(path)
    if not path.is_file():
        raise RegistryError(f"no model file at {path}")
    parent_sha = register(store, parent, user) if parent else None
    data = json.loads(Path(manifest).read_text(encoding="utf-8")) if manifest else None
    brief = {k: data[k] for k in ("counts", "sources") if k in data} if data else None
    sha = sha256_file(path)
    store.register_model(sha, str(path.resolve()), parent_sha, brief, command, figures, user)
    return sha


def models(store: Store) -> list[dict]:
    default = store.default_model()
    rows = store.query("SELECT * FROM models ORDER BY id")
    for r in rows:
        r["default"] = bool(default and default["sha256"] == r["sha256"])
        r["figures"] = json.loads(r["figures"]) if r["figures"] else None
        r["manifest"] = json.loads(r["manifest"]) if r["manifest"] else None
    return rows


def resolve(store: Store, cfg: Config, name: str) -> Path:
    """A model by file path, or by (a prefix of at least 8 characters of) a registered SHA-256."""
    p = Path(name)
    if p.is_file():
        return p
    if len(name) >= 8:
        rows = store.query("SELECT path FROM models WHERE sha256 LIKE ?", [name.lower() + "%"])
        if len(rows) == 1:
            return Path(rows[0]["path"])
    raise RegistryError(f"{name!r} is neither a model file nor a registered model's SHA-256")


def default_path(store: Store, cfg: Config) -> Path:
    """The weights later runs use: the last promoted model, else the config's."""
    d = store.default_model()
    return Path(d["path"]) if d else cfg.model.resolved_path()


def effective_config(store: Store, cfg: Config) -> Config:
    """``cfg`` with the promoted model as its model (alone: an ensemble was chosen for another model)."""
    d = store.default_model()
    if d is None:
        return cfg
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={"path": d["path"], "ensemble": []})})


def held_out(store: Store, manifest: Path | None) -> list[int]:
    """Source ids to compare on: the dataset's validation sources (never trained on), else every source an
    analyst has reviewed."""
    if manifest:
        m = json.loads(Path(manifest).read_text(encoding="utf-8"))
        shas = [s["sha256"] for s in m["sources"] if s["split"] == "val"]
        if not shas:
            raise RegistryError(f"{manifest} holds no validation source: build the dataset from two or more sources")
        return [r["id"] for r in store.query(
            f"SELECT id FROM sources WHERE sha256 IN ({','.join('?' * len(shas))}) ORDER BY sha256", shas)]
    return [r["source_id"] for r in store.query(
        "SELECT DISTINCT v.source_id FROM violations v JOIN decisions d ON d.violation_id = v.id"
        " JOIN sources s ON s.id = v.source_id WHERE v.run_id = s.current_run_id ORDER BY v.source_id")]


def truth(store: Store, source_id: int) -> list[dict]:
    """What the analysts say is there: confirmed violations (the model's and the ones they added)."""
    return store.query(
        "SELECT v.category, v.start_s, v.end_s FROM violations v JOIN sources s ON s.id = v.source_id"
        " WHERE v.source_id = ? AND v.run_id = s.current_run_id AND v.status = 'confirmed' ORDER BY v.start_s",
        [source_id])


def replay(ws: Workspace, store: Store, cfg: Config, det: YoloDetector, source_id: int) -> list[dict]:
    """The pipeline's violations for one source with this detector, written nowhere."""
    from .annotate import media_path
    from .sample import Sampler

    src = store.source(source_id)
    full = (src.probe.width, src.probe.height)
    motion, obs, batch = MotionEstimator(), [], []

    def flush() -> None:
        found = det.detect(batch, full)
        for f in batch:
            obs.append((f.t_s, [d for d in found if d.frame_index == f.index], motion.update(f, full)))
        batch.clear()

    for f in Sampler(media_path(ws, src), cfg.sampling.rate, src.probe.rotation, cfg.sampling.max_side,
                     cfg.sampling.scene_keyframes):
        batch.append(f)
        if len(batch) >= det.batch:
            flush()
    if batch:
        flush()
    _, found = violations_from(obs, cfg)
    return [{"category": v.category, "start_s": v.start_s, "end_s": v.end_s} for v in found]


def measure(ws: Workspace, store: Store, cfg: Config, model: Path, sources: list[int]) -> Figures:
    det = YoloDetector(cfg, model)
    total = EventScore()
    for sid in sources:
        total = total.add(score_events(replay(ws, store, cfg, det, sid), truth(store, sid)))
    return Figures(Path(model).name, det.sha256, total)


def compare(ws: Workspace, store: Store, cfg: Config, a: Path, b: Path, manifest: Path | None = None
            ) -> tuple[Figures, Figures, list[int]]:
    sources = held_out(store, manifest)
    if not sources:
        raise RegistryError("no reviewed source to compare on: review some footage first")
    return measure(ws, store, cfg, a, sources), measure(ws, store, cfg, b, sources), sources


def promote(ws: Workspace, store: Store, cfg: Config, model: Path, user: str, force: bool = False,
            reason: str | None = None, manifest: Path | None = None) -> tuple[Figures, Figures]:
    """Make ``model`` the default for later runs if it is at least as good as the current default on the
    held-out reviewed sources (recall and precision), or when ``force`` is given with a reason."""
    if force and not (reason and reason.strip()):
        raise RegistryError("--force needs --reason: the custody log records why a model was promoted anyway")
    current = default_path(store, cfg)
    new, old, sources = compare(ws, store, cfg, model, current, manifest)
    worse = [k for k in ("recall", "precision") if getattr(new.score, k) < getattr(old.score, k)]
    if worse and not force:
        raise RegistryError(
            f"not promoted: {new.model} is worse than the current default {old.model} on {' and '.join(worse)} "
            f"({new.score} against {old.score}, {len(sources)} held-out reviewed sources); "
            "use --force --reason to promote it anyway")
    sha = register(store, model, user)
    store.promote_model(sha, user, force, reason.strip() if reason else None,
                        {"candidate": new.as_dict(), "previous": old.as_dict(), "sources": len(sources)})
    return new, old
