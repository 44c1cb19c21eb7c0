"""The command line: parse arguments, build config, call one library function, print the result.

Errors a user can cause are one line on stderr and a non-zero exit; everything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from . import config as config_mod
from .config import PROJECT_ROOT, Config, ConfigError
from .vocab import Status
from .workspace import Workspace

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="vaudit: find street violations in inspection footage and keep the evidence.")
out = Console(emoji=False)
err = Console(stderr=True, emoji=False)
SAMPLES = PROJECT_ROOT / "samples"


class _State:
    workspace: Workspace


state = _State()


@app.callback()
def _main(
    workspace: Annotated[Path | None, typer.Option("--workspace", "-w", envvar="VAUDIT_WORKSPACE",
                                                   help="Workspace folder (evidence.db, clips/, frames/).")] = None,
    db: Annotated[str | None, typer.Option(
        "--db", help="Evidence database: postgresql://user@host/name (shared by several machines) or an SQLite "
                     "file; default: $VAUDIT_DB, the workspace's workspace.yaml, else WORKSPACE/evidence.db.")] = None,
    evidence: Annotated[Path | None, typer.Option(
        help="Folder for clips/, frames/, originals/ that every worker reaches (shared storage); default: "
             "$VAUDIT_EVIDENCE, workspace.yaml, else the workspace.")] = None,
) -> None:
    from .workspace import WorkspaceConfigError

    try:
        state.workspace = Workspace.resolve(workspace, db, evidence)
    except WorkspaceConfigError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _user_errors() -> tuple[type[Exception], ...]:
    from .detect import ModelError
    from .evidence import EvidenceError
    from .ingest import IngestError
    from .store import StoreError

    return ConfigError, IngestError, ModelError, StoreError, EvidenceError


@contextmanager
def _friendly():
    try:
        yield
    except _user_errors() as e:
        err.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted: finished sources are saved; run again to continue")
        raise typer.Exit(130) from None


def _config(path: Path | None) -> Config:
    return config_mod.load(path)


def _store():
    from .store import Store, StoreError

    try:
        state.workspace.create()
    except OSError as e:
        raise StoreError(f"cannot create workspace {state.workspace.root}: {e.strerror}") from None
    return Store(state.workspace.db)



@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Footage files or folders (searched recursively).")],
    district: Annotated[str | None, typer.Option(help="District/township for every file.")] = None,
    inspector: Annotated[str | None, typer.Option(help="Inspector who filmed the footage.")] = None,
    manifest: Annotated[Path | None, typer.Option(help="CSV with file, district, inspector, capture_start.")] = None,
    config: Annotated[Path | None, typer.Option(help="Config YAML (default: configs/default.yaml).")] = None,
    copy: Annotated[bool, typer.Option("--copy", help="Also keep a read-only copy in the workspace.")] = False,
) -> None:
    """Register footage: probe, hash (SHA-256) and record where and when it was filmed."""
    from .ingest import discover
    from .ingest import ingest as do_ingest
    from .progress import progress

    with _friendly():
        cfg = _config(config)
        store = _store()
        total = len(discover(paths))
        with progress() as bar:
            task = bar.add_task("ingest", total=total)
            report = do_ingest(store, cfg, paths, district, inspector, manifest,
                               on_file=lambda p: bar.update(task, advance=1, description=f"ingest {p.name}"),
                               copy_to=state.workspace.originals if copy else None)
        store.close()
    out.print(f"added {len(report.added)}, already known {len(report.duplicates)}, rejected {len(report.rejected)}")
    for path, reason in report.rejected:
        out.print(f"  rejected {path}: {reason}", highlight=False)


def _run(cfg: Config, model: Path | None, reprocess_reviewed: bool = False, lease_s: float | None = None,
         worker: str | None = None, wait: bool = False):
    from .progress import progress
    from .run import run as do_run

    with progress() as bar:
        task = None

        def on(event: str, info: dict) -> None:
            nonlocal task
            if event == "source":
                task = bar.add_task(Path(info["path"]).name, total=round(info["duration_s"], 1))
            elif event == "frames" and task is not None:
                bar.update(task, completed=round(info["t_s"], 1))

        from .store import LEASE_S

        return do_run(state.workspace, cfg, model, progress=on, reprocess_reviewed=reprocess_reviewed,
                      lease_s=lease_s or LEASE_S, worker=worker, wait=wait)


@app.command()
def run(
    config: Annotated[Path | None, typer.Option(help="Config YAML (default: configs/default.yaml).")] = None,
    model: Annotated[Path | None, typer.Option(help="YOLO weights, run alone (default: model.path and model.ensemble from config).")] = None,
    reprocess_reviewed: Annotated[bool, typer.Option(
        "--reprocess-reviewed", help="Also re-process sources whose current results analysts have reviewed "
                                     "(their decisions stay with the earlier run; the new results are unreviewed).")] = False,
    lease: Annotated[float | None, typer.Option(
        help="Seconds a worker's lease on a source lasts without a heartbeat (renewed every sixth of it); "
             "a dead worker's source is taken over after this long. Default 120.")] = None,
    worker: Annotated[str | None, typer.Option(
        envvar="VAUDIT_WORKER", help="This worker's name in leases and `vaudit status` (default: host name).")] = None,
    wait: Annotated[bool, typer.Option(
        "--wait", help="With nothing left to take, wait while other workers hold sources and take over any "
                       "whose worker dies; finish when none is held (for several workers or machines).")] = False,
) -> None:
    """Process every pending source: detect violations, cut evidence clips, write the database. Resumable;
    several may run at once, on one machine or, against PostgreSQL, on many. Sources already reviewed keep
    their results when the model or config changes, unless --reprocess-reviewed."""
    with _friendly():
        if lease is not None and lease < 3:
            raise ConfigError("--lease must be at least 3 seconds")
        cfg = _promoted(_config(config))
        summary = _run(cfg, model, reprocess_reviewed, lease, worker, wait)
    _print_run(summary)
    if summary.failed:
        raise typer.Exit(1)


def _promoted(cfg: Config) -> Config:
    """The config with the model last promoted (`vaudit models promote`) in place of its own."""
    from .registry import effective_config

    if not state.workspace.has_db:
        return cfg
    store = _store()
    try:
        return effective_config(store, cfg)
    finally:
        store.close()


def _print_run(summary) -> None:
    t = summary.timings
    out.print(f"run {summary.run_id}: {summary.processed} sources processed, {summary.violations} violations, "
              f"{len(summary.rejected)} rejected, {len(summary.failed)} failed in {t.get('total', 0):.1f} s")
    for path, reason in summary.rejected + summary.failed:
        out.print(f"  {path}: {reason}", highlight=False, soft_wrap=True)
    if summary.kept:
        out.print(f"kept {summary.kept} reviewed sources with their earlier results and decisions "
                  f"(已审核的 {summary.kept} 个源保留原结果); --reprocess-reviewed re-processes them", highlight=False)


@app.command()
def demo(
    config: Annotated[Path | None, typer.Option(help="Config YAML.")] = None,
) -> None:
    """Ingest the shipped samples, run, and show what was found."""
    from .ingest import ingest as do_ingest

    with _friendly():
        cfg = _config(config)
        store = _store()
        report = do_ingest(store, cfg, [SAMPLES])
        store.close()
        out.print(f"samples: {len(report.added)} added, {len(report.duplicates)} already ingested")
        summary = _run(cfg, None)
    _print_run(summary)
    _violations_table(cfg, _store().violations())
    out.print(f"evidence clips: {state.workspace.clips}/<district>/<date>/<category>_<time>_<id>.mp4", highlight=False,
              soft_wrap=True)
    out.print(f"annotated keyframes: {state.workspace.frames}/...  full list: vaudit violations --json",
              highlight=False, soft_wrap=True)


def _violations_table(cfg: Config, rows: list[dict]) -> None:
    table = Table(title=f"{len(rows)} violations")
    for col in ("id", "category", "district", "filmed", "offset s", "conf", "status"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        when = r["start_time"][5:19].replace("T", " ") if r["start_time"] else "?"
        table.add_row(str(r["id"]), cfg.categories[r["category"]].zh, r["district"] or "-", when,
                      f"{r['start_s']:.0f}-{r['end_s']:.0f}", f"{r['confidence']:.2f}", r["status"])
    out.print(table)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Workers and troubled sources as JSON.")] = False,
) -> None:
    """Sources per state, violations per status, and the latest run key's workers (every machine's): what
    each holds, what it has done and how fast, and the stuck, failed and rejected sources with reasons."""
    from .fleet import fleet

    with _friendly():
        store = _store()
        last = store.query("SELECT run_key FROM runs ORDER BY id DESC LIMIT 1")
        key = last[0]["run_key"] if last else None
        counts = store.status_counts(key)
        vcounts = store.query("SELECT v.status, count(*) n FROM violations v JOIN sources s ON s.id = v.source_id"
                              " WHERE v.run_id = s.current_run_id GROUP BY 1")
        f = fleet(store, key)
        store.close()
    if as_json:
        sys.stdout.write(f.to_json() + "\n")
        return
    out.print("sources: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    out.print("violations: " + (", ".join(f"{r['status']} {r['n']}" for r in vcounts) or "none"))
    if f.workers:
        out.print(f"workers of run key {key}:", highlight=False)
    for w in f.workers:
        speed = f", {w.speed:.1f}x real time" if w.speed else ""
        holding = f" on {Path(w.source).name}" if w.source else ""
        holding += f" (no heartbeat for {w.silent_s:.0f} s)" if w.state == "gone" else ""
        out.print(f"  run {w.run_id} {w.owner or w.host} ({w.host} pid {w.pid}): {w.state}{holding}; {w.done} sources, "
                  f"{w.footage_s / 60:.1f} min of footage in {w.elapsed_s / 60:.1f} min{speed}", highlight=False,
                  soft_wrap=True)
    for t in f.trouble:
        out.print(f"  {t.state} source {t.source_id} {t.path}: {t.reason}", highlight=False, soft_wrap=True)


@app.command()
def violations(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array.")] = False,
    status: Annotated[str | None, typer.Option(help="pending | confirmed | rejected")] = None,
    district: Annotated[str | None, typer.Option()] = None,
    category: Annotated[str | None, typer.Option(help="garbage | parking | stall")] = None,
    config: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """List violations (of each source's latest run)."""
    with _friendly():
        cfg = _config(config)
        if status and status not in tuple(Status):
            raise ConfigError(f"--status must be pending, confirmed or rejected, not {status!r}")
        if category and category not in config_mod.CATEGORY_IDS:
            raise ConfigError(f"--category must be one of {', '.join(config_mod.CATEGORY_IDS)}, not {category!r}")
        rows = _store().violations(status, cfg.canonical_district(district), category)
    if as_json:
        for r in rows:
            r["category_name"] = cfg.category_label(r["category"])
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
    else:
        _violations_table(cfg, rows)


@app.command()
def synth(
    out_dir: Annotated[Path, typer.Argument(help="Where to write NAME.mp4 + NAME.json (or the dataset).")],
    seed: Annotated[int, typer.Option()] = 0,
    duration: Annotated[float, typer.Option(help="Seconds per video.")] = 20.0,
    count: Annotated[int, typer.Option(help="Videos (or dataset images) to render.")] = 1,
    size: Annotated[str, typer.Option(help="WxH")] = "1280x720",
    fps: Annotated[float, typer.Option()] = 25.0,
    gop: Annotated[float, typer.Option(help="Seconds between keyframes.")] = 1.0,
    codec: Annotated[str, typer.Option(help="h264 | hevc")] = "h264",
    dataset: Annotated[bool, typer.Option("--dataset", help="Write a YOLO image dataset instead of videos.")] = False,
    real_garbage: Annotated[Path | None, typer.Option(help="woosong-trashbags folder for copy-paste.")] = None,
) -> None:
    """Render synthetic inspection footage with exact ground truth (or a YOLO training dataset)."""
    from . import synth as synth_mod

    with _friendly():
        try:
            w, h = (int(x) for x in size.lower().split("x"))
        except ValueError:
            raise ConfigError(f"--size must look like 1280x720, not {size!r}") from None
        if codec not in ("h264", "hevc"):
            raise ConfigError(f"--codec must be h264 or hevc, not {codec!r}")
        out_dir.mkdir(parents=True, exist_ok=True)
        if dataset:
            path = synth_mod.render_dataset(out_dir, seed=seed, count=count, size=(w, h), real_garbage_dir=real_garbage)
            out.print(f"dataset: {path}")
            return
        for k in range(count):
            name = f"synth_{seed + k:05d}"
            gt = synth_mod.render_video(out_dir, name, seed=seed + k, duration=duration, size=(w, h), fps=fps,
                                        gop_s=gop, codec=codec)
            out.print(f"{out_dir / name}.mp4: {len(gt['violations'])} violations, {len(gt['negatives'])} negatives")


@app.command()
def train(
    out_path: Annotated[Path, typer.Option("--out", help="Weights to write, e.g. models/city-v2.pt (+ .md card).")],
    data: Annotated[str | None, typer.Option(help="YOLO data.yaml files with vaudit's classes, comma-separated.")] = None,
    synth: Annotated[int, typer.Option(help="Also render this many synthetic training images.")] = 0,
    synth_seed: Annotated[int, typer.Option(help="Seed of the synthetic images.")] = 1,
    synth_mix: Annotated[str | None, typer.Option(help="Violation mix, e.g. garbage=0.6,parking=0.2,stall=0.2")] = None,
    paste_real: Annotated[bool, typer.Option(help="Paste real woosong bags into synthetic frames.")] = True,
    real: Annotated[Path | None, typer.Option(help="woosong-trashbags folder: real garbage photos to mix in.")] = None,
    real_sets: Annotated[Path | None, typer.Option(
        help="Folder of real labelled sets (../shared/data): train on every known set's train split, each "
             "image's loss only for the classes its set labels.")] = None,
    base: Annotated[Path | None, typer.Option(help="Start from these weights (fine-tuning).")] = None,
    epochs: Annotated[int, typer.Option()] = 30,
    hours: Annotated[float | None, typer.Option(help="Train for this long instead (overrides --epochs).")] = None,
    imgsz: Annotated[int, typer.Option()] = 416,
    batch: Annotated[int, typer.Option()] = 32,
    workers: Annotated[int, typer.Option(help="Data-loading processes.")] = 2,
    jobs: Annotated[int, typer.Option(help="Processes rendering synthetic images.")] = 2,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from last.pt.")] = False,
    mine: Annotated[int, typer.Option(help="With --base and --synth: keep only the N rendered training frames "
                                           "the base model gets most wrong.")] = 0,
) -> None:
    """Train a detector (CPU, or GPU when present) and write its model card. Downloads nothing."""
    from .train import train_recipe, write_card

    if not data and not synth and not real and not real_sets:
        raise typer.BadParameter("give --data, --synth or --real: there is nothing to train on")
    if mine and not (base and synth):
        raise typer.BadParameter("--mine needs --base (the model whose mistakes are mined) and --synth (frames to mine)")
    command = "vaudit " + " ".join(sys.argv[1:])
    try:
        mix = {k: float(v) for k, v in (kv.split("=") for kv in synth_mix.split(","))} if synth_mix else None
    except ValueError:
        raise typer.BadParameter(f"--synth-mix must look like garbage=0.6,parking=0.2,stall=0.2, not {synth_mix!r}")
    info = train_recipe(out_path, data=[Path(d) for d in (data or "").split(",") if d], synth=synth,
                        synth_seed=synth_seed, synth_mix=mix, paste_real=paste_real, real=real, epochs=epochs,
                        hours=hours, imgsz=imgsz, batch=batch, base=base, workers=workers, jobs=jobs,
                        command=command, resume=resume, mine=mine, real_sets=real_sets)
    write_card(out_path.with_suffix(".md"), info)
    out.print(f"wrote {out_path} and {out_path.with_suffix('.md')}")


@app.command()
def dataset(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write (images/, labels/, data.yaml, manifest.json).")],
    val_share: Annotated[float, typer.Option(help="Share of reviewed sources held out for validation.")] = 0.2,
    config: Annotated[Path | None, typer.Option(help="Config YAML (its model.classes name the label classes).")] = None,
) -> None:
    """Reviewed footage as a YOLO dataset: confirmed, corrected and added violations as boxes, rejected
    detections as hard negatives, split by source file, with a manifest of every source and decision."""
    from .dataset import DatasetError, build

    with _friendly():
        cfg = _config(config)
        if not 0 <= val_share < 1:
            raise ConfigError(f"--val-share must be in [0, 1), not {val_share}")
        try:
            m = build(state.workspace, _store(), cfg, out_dir, val_share)
        except DatasetError as e:
            raise ConfigError(str(e)) from None
    c = m["counts"]
    out.print(f"wrote {out_dir}: {c['sources']} sources, {c['train_images']} training and {c['val_images']} "
              f"validation images, {c['boxes']} boxes ({c['positive']} violations used as boxes, {c['added']} of them "
              f"added by analysts; {c['hard_negative']} rejected as hard negatives; {c['complete_frames']} frames "
              "marked complete)", highlight=False, soft_wrap=True)


@app.command()
def evaluate(
    model: Annotated[Path | None, typer.Option(help="Weights to measure alone (default: the config's model "
                                                    "and ensemble, as `vaudit run` uses them).")] = None,
    config: Annotated[Path | None, typer.Option(help="Config file (thresholds, input size, precision).")] = None,
    real_sets: Annotated[Path | None, typer.Option(
        help="Folder of the known real sets (../shared/data): measure each one's fixed holdout split.")] = None,
    real: Annotated[list[Path] | None, typer.Option(
        help="Any YOLO folder (images/ + labels/, or valid/images + valid/labels) to measure; repeatable.")] = None,
    classes: Annotated[str | None, typer.Option(
        help="With --real: its class ids onto vaudit's classes, e.g. 0=garbage,1=bin,2=garbage.")] = None,
    synth: Annotated[int, typer.Option(help="Also re-render this many synthetic images (as in training) and "
                                            "measure their val split (float weights, Ultralytics).")] = 0,
    synth_seed: Annotated[int, typer.Option()] = 1,
    imgsz: Annotated[int, typer.Option(help="Input size for --synth.")] = 640,
    jobs: Annotated[int, typer.Option()] = 2,
) -> None:
    """Measure a detector on held-out data: per set and class, AP50 and recall/precision at the pipeline's
    thresholds (JSON on stdout, a table on stderr)."""
    from .realdata import available, folder_set

    if not synth and not real and not real_sets:
        raise typer.BadParameter("give --real-sets DIR, --real DIR and/or --synth N")
    try:
        mapping = {int(k): v for k, v in (kv.split("=") for kv in classes.split(","))} if classes else {}
        sets = [folder_set(p, mapping) for p in real or []]
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    if real_sets:
        sets += available(real_sets)
        if not available(real_sets):
            raise typer.BadParameter(f"no known real set under {real_sets}")
    cfg = _config(config)
    res: dict = {}
    with _friendly():
        if sets:
            from .progress import progress
            from .realeval import evaluate_real

            with progress() as bar:
                tasks: dict[str, int] = {}

                def step(name: str, done: int, total: int) -> None:
                    tasks.setdefault(name, bar.add_task(name, total=total))
                    bar.update(tasks[name], completed=done)

                res = evaluate_real(cfg, sets, model=model, data=real_sets or Path(), progress=step)
            _real_table(res)
        if synth:
            import contextlib

            from .train import evaluate_recipe

            with contextlib.redirect_stdout(sys.stderr):  # Ultralytics' progress must not corrupt the JSON
                res["synthetic"] = evaluate_recipe(model or cfg.model.resolved_path(), synth=synth,
                                                   synth_seed=synth_seed, imgsz=imgsz, jobs=jobs)
    sys.stdout.write(json.dumps(res, indent=1, ensure_ascii=False) + "\n")


def _real_table(res: dict) -> None:
    t = Table(title=f"{res['model']} at {res['imgsz']} px ({res['precision']}), holdout photos")
    for col in ("set", "photos", "class", "boxes", "AP50", "recall", "precision"):
        t.add_column(col)
    for name, s in res["sets"].items():
        for cls, r in s["per_class"].items():
            t.add_row(name, str(s["photos"]), cls, str(r["boxes"]), f"{r['AP50']:.3f}", f"{r['recall']:.3f}",
                      f"{r['precision']:.3f}")
    err.print(t)
    err.print("recall and precision at the pipeline's thresholds; AP50 over every confidence")


@app.command()
def doctor(
    config: Annotated[Path | None, typer.Option()] = None,
    model: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """Check ffmpeg, fonts, the model, the workspace and free disk; say what to fix."""
    from .doctor import doctor as do_doctor

    with _friendly():
        checks = do_doctor(state.workspace, _config(config), model)
    for c in checks:
        mark = "[green]ok[/green]  " if c.ok else "[red]FAIL[/red]"
        out.print(f"{mark} {c.name}: {c.detail}" + (f"\n      fix: {c.fix}" if c.fix else ""), highlight=False)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


KeyOption = Annotated[Path | None, typer.Option(
    "--key", help="Office signing key (default: $VAUDIT_SIGNING_KEY, else WORKSPACE/keys/office-signing-key.pem).")]


def _public_key(text: str | None):
    from . import keys

    try:
        return keys.PublicKey.parse(text) if text else None
    except keys.SigningKeyError as e:
        raise ConfigError(str(e)) from None


@app.command()
def verify(
    deep: Annotated[bool, typer.Option("--deep", help="Also re-hash every original (slow).")] = False,
    public_key: Annotated[str | None, typer.Option(
        "--public-key", help="The office public key (as `vaudit keys show` prints it, or a file holding it).")] = None,
    fingerprint: Annotated[str | None, typer.Option(
        help="The office key's fingerprint from the paperwork: the workspace's key must have it.")] = None,
    witness: Annotated[list[Path] | None, typer.Option(
        "--witness", help="Another head to check against: a copy of the witness file, or a pack's manifest.json.")] = None,
    key: KeyOption = None,
) -> None:
    """Recompute every artifact hash and the custody chain, compare the state tables with the log and the log
    with its witnessed heads; exit 1 and list each problem if anything changed."""
    from .verify import verify_all

    with _friendly():
        trusted = _public_key(public_key)
        store = _store()
        report = verify_all(state.workspace, store, deep, trusted=trusted, key_path=key, extra_heads=witness or (),
                            fingerprint=fingerprint)
    problems, counts = report.problems, report.counts
    for p in problems:
        out.print(f"[red]FAIL[/red] {p}", highlight=False, soft_wrap=True)
    for n in report.notes:
        out.print(f"note: {n}", highlight=False, soft_wrap=True)
    summary = (f"{counts['artifacts']} artifacts, {counts['custody_entries']} custody entries, "
               f"{counts['state_rows']} state rows replayed, {counts['witnessed_heads']} witnessed heads, "
               f"{counts['originals']} originals{' re-hashed' if deep else ' checked'}")
    if problems:
        out.print(f"{len(problems)} problems in {summary}", soft_wrap=True)
        raise typer.Exit(1)
    out.print(f"intact: {summary}", soft_wrap=True)


@app.command()
def custody(what: Annotated[str, typer.Argument(help="A violation id, or `head`: sign, witness and print the "
                                                "custody log's head.")],
            as_json: Annotated[bool, typer.Option("--json")] = False,
            key: KeyOption = None) -> None:
    """The full history of one violation (source, run, artifacts, decisions, custody entries), or the log's head."""
    from .verify import format_history, violation_history

    if what == "head":
        _custody_head(as_json, key)
        return
    if what == "models":
        _custody_models(as_json)
        return
    with _friendly():
        try:
            h = violation_history(_store(), int(what))
        except ValueError:
            raise ConfigError(f"give a violation id, `head` or `models`, not {what!r}") from None
        except LookupError as e:
            raise ConfigError(str(e)) from None
    if as_json:
        sys.stdout.write(json.dumps(h, ensure_ascii=False, indent=1, default=str) + "\n")
    else:
        out.print(format_history(h), highlight=False, soft_wrap=True)


def _custody_models(as_json: bool) -> None:
    """Every registration and promotion of a model, from the custody log: who, when, which SHA-256, why."""
    with _friendly():
        rows = _store().query("SELECT seq, at, actor, event, payload, hash FROM custody"
                              " WHERE event IN ('model_registered', 'model_promoted') ORDER BY seq")
    for r in rows:
        r["payload"] = json.loads(r["payload"])
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        return
    for r in rows:
        p = r["payload"]
        if r["event"] == "model_promoted":
            c = (p.get("figures") or {}).get("candidate") or {}
            what = (f"promoted {p['sha256']} (previous {p.get('previous_sha256') or 'the config default'}), recall "
                    f"{c.get('recall')} precision {c.get('precision')}"
                    + (f", FORCED: {p.get('reason')}" if p.get("forced") else ""))
        else:
            what = f"registered {p['sha256']} {p.get('path')} (parent {p.get('parent_sha256') or '-'})"
        out.print(f"#{r['seq']} {r['at']} {r['actor']}: {what}", highlight=False, soft_wrap=True)


def _custody_head(as_json: bool, key: Path | None) -> None:
    from . import anchor, keys

    with _friendly():
        try:
            rec = anchor.witness(state.workspace, _store(), "custody_head", key)
        except keys.SigningKeyError as e:
            raise ConfigError(str(e)) from None
    if as_json:
        sys.stdout.write(json.dumps(rec, ensure_ascii=False) + "\n")
        return
    out.print(f"custody head: entry {rec['seq']}, hash {rec['hash']}", highlight=False, soft_wrap=True)
    out.print(f"taken at {rec['at']}, appended to {state.workspace.witness.name}", highlight=False)
    if rec["signature"]:
        out.print(f"signed by key {rec['key']}: {rec['signature']}", highlight=False, soft_wrap=True)
    else:
        err.print("warning: unsigned (no signing key: `vaudit keys init`)")


keys_app = typer.Typer(help="The office signing key: signs custody heads and meeting packs.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("init")
def keys_init(key: KeyOption = None) -> None:
    """Create the office signing key (Ed25519; the private key owner-only) and witness the current head with it."""
    from . import anchor, keys

    path = keys.key_path(state.workspace, key)
    with _friendly():
        try:
            sk = keys.init(path)
            anchor.witness(state.workspace, _store(), "keys_init", path)
        except keys.SigningKeyError as e:
            raise ConfigError(str(e)) from None
    out.print(f"signing key written: {path} (owner-only; keep a copy offline)", highlight=False, soft_wrap=True)
    out.print(f"public key:  {sk.public.text}", highlight=False)
    out.print(f"fingerprint: {sk.public.fingerprint}", highlight=False)


@keys_app.command("show")
def keys_show(key: KeyOption = None) -> None:
    """Print the office public key and its fingerprint (for the meeting's paperwork)."""
    from . import keys

    path = keys.key_path(state.workspace, key)
    with _friendly():
        try:
            pub = keys.load_public(path)
        except keys.SigningKeyError as e:
            raise ConfigError(str(e)) from None
        if pub is None:
            raise ConfigError(f"no signing key at {path}: create one with `vaudit keys init`")
    out.print(f"public key:  {pub.text}", highlight=False)
    out.print(f"fingerprint: {pub.fingerprint}", highlight=False)


@app.command()
def backup(dest: Annotated[Path, typer.Argument(help="Folder or .db file to write.")]) -> None:
    """A consistent copy of the evidence database while others use it, plus a manifest."""
    from .verify import backup as do_backup

    with _friendly():
        m = do_backup(_store(), dest)
    out.print(f"backup {m['database']} ({m['size']} bytes, sha256 {m['sha256'][:16]}…), integrity {m['integrity_check']}")


export_app = typer.Typer(help="Counts, charts and the exposure-meeting pack for assessment staff.",
                         no_args_is_help=True)
app.add_typer(export_app, name="export")


def _export_errors():
    from .export import PackError, RedactionError

    return PackError, RedactionError, ValueError


@export_app.command("counts")
def export_counts(
    period: Annotated[str, typer.Option(help="2026-11 | 2026-Q4 | 2026")],
    by: Annotated[str, typer.Option(help="district,category | district | category")] = "district,category",
    status: Annotated[str, typer.Option(help="confirmed | pending | rejected | all")] = "confirmed",
    fmt: Annotated[str, typer.Option("--format", help="csv | xlsx | json")] = "csv",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File to write (default: stdout for csv/json).")] = None,
    config: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """Violations per district x category for a period: totals, ranks, change, footage hours."""
    import tempfile

    from .export import counts, parse_period, write_counts

    with _friendly():
        cfg = _config(config)
        try:
            p = parse_period(period, cfg.tz)
            table = counts(_store(), cfg, p, by=tuple(x.strip() for x in by.split(",")), status=status)
            if output is None and fmt == "xlsx":
                raise ValueError("--format xlsx needs -o FILE")
            if output is None:
                with tempfile.TemporaryDirectory() as d:
                    path = write_counts(table, fmt, Path(d) / f"counts.{fmt}")
                    sys.stdout.write(path.read_text(encoding="utf-8-sig"))
                return
            write_counts(table, fmt, output)
        except _export_errors() as e:
            raise ConfigError(str(e)) from None
    out.print(f"wrote {output}")


@export_app.command("charts")
def export_charts(
    period: Annotated[str, typer.Option(help="2026-11 | 2026-Q4 | 2026")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the PNG charts.")],
    config: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """PNG charts: violations per district by category, and the 12-month trend per district."""
    from .export import charts, parse_period

    with _friendly():
        cfg = _config(config)
        try:
            paths = charts(_store(), cfg, parse_period(period, cfg.tz), output)
        except _export_errors() as e:
            raise ConfigError(str(e)) from None
    for p in paths:
        out.print(f"wrote {p}")


@export_app.command("pack")
def export_pack(
    period: Annotated[str, typer.Option(help="2026-11 | 2026-Q4 | 2026")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder or FILE.zip to create.")],
    district: Annotated[str | None, typer.Option(help="Only this district's violation cards.")] = None,
    blur_faces: Annotated[bool, typer.Option("--blur-faces", help="Blur faces in the pack's copies.")] = False,
    blur_plates: Annotated[bool, typer.Option("--blur-plates", help="Blur licence plates in the copies.")] = False,
    config: Annotated[Path | None, typer.Option()] = None,
    key: KeyOption = None,
) -> None:
    """The exposure-meeting pack: index.html, clips, keyframes, custody excerpts, signed manifest, verify script."""
    from .export import pack, parse_period

    with _friendly():
        cfg = _config(config)
        try:
            path = pack(state.workspace, _store(), cfg, parse_period(period, cfg.tz), output,
                        district=cfg.canonical_district(district), blur_faces=blur_faces, blur_plates=blur_plates,
                        actor="cli", key_path=key)
        except _export_errors() as e:
            raise ConfigError(str(e)) from None
    out.print(f"pack written: {path} (check it with: python {path}/verify_pack.py --fingerprint FINGERPRINT)"
              if path.is_dir() else f"pack written: {path}")
    if not (path / "manifest.sig").is_file() and path.is_dir():
        err.print("warning: the pack is unsigned (no signing key: `vaudit keys init`)")


models_app = typer.Typer(help="The model registry: lineage, figures on reviewed footage, the default for runs.",
                         invoke_without_command=True)
app.add_typer(models_app, name="models")
UserOption = Annotated[str, typer.Option("--user", help="Who does this (recorded in the custody log).")]


def _registry_errors():
    from .detect import ModelError
    from .registry import RegistryError

    return RegistryError, ModelError


@models_app.callback()
def models_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Registered models: SHA-256, parent, data, command, figures, and which one is the default."""
    from .registry import models

    if ctx.invoked_subcommand:
        return
    with _friendly():
        rows = models(_store())
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        return
    if not rows:
        out.print("no registered models: runs use the config's model.path")
    for r in rows:
        fig = r["figures"] or {}
        out.print(f"{'* ' if r['default'] else '  '}{r['sha256'][:16]} {r['path']} parent "
                  f"{(r['parent_sha256'] or '-')[:16]} by {r['registered_by']} {r['registered_at']}"
                  + (f" recall {fig.get('recall')} precision {fig.get('precision')}" if fig else ""),
                  highlight=False, soft_wrap=True)


@models_app.command("register")
def models_register(
    model: Annotated[Path, typer.Argument(help="Weights (.pt).")],
    parent: Annotated[Path | None, typer.Option(help="The weights it was fine-tuned from.")] = None,
    manifest: Annotated[Path | None, typer.Option(help="The dataset manifest.json it was tuned on.")] = None,
    user: UserOption = "cli",
) -> None:
    """Record a model (once per SHA-256) with its parent and data."""
    from .registry import register

    with _friendly():
        try:
            sha = register(_store(), model, user, parent, manifest, "vaudit " + " ".join(sys.argv[1:]))
        except _registry_errors() as e:
            raise ConfigError(str(e)) from None
    out.print(f"registered {model} sha256 {sha}", highlight=False)


@models_app.command("compare")
def models_compare(
    a: Annotated[str, typer.Argument(help="Model A: a .pt file or a registered SHA-256 (prefix).")],
    b: Annotated[str, typer.Argument(help="Model B.")],
    dataset: Annotated[Path | None, typer.Option(help="Dataset folder: compare on its validation sources (held "
                                                       "out from training); default every reviewed source.")] = None,
    config: Annotated[Path | None, typer.Option()] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Replay the pipeline with A and with B on held-out reviewed footage; score events against the
    analysts' decisions (confirmed and added violations are the truth). Writes no results."""
    from .registry import compare, resolve

    with _friendly():
        cfg = _config(config)
        store = _store()
        try:
            import contextlib

            with contextlib.redirect_stdout(sys.stderr):  # a first ONNX export's messages must not corrupt the JSON
                fa, fb, sources = compare(state.workspace, store, cfg, resolve(store, cfg, a), resolve(store, cfg, b),
                                          dataset / "manifest.json" if dataset else None)
        except _registry_errors() as e:
            raise ConfigError(str(e)) from None
    res = {"sources": len(sources), "a": fa.as_dict(), "b": fb.as_dict()}
    if as_json:
        sys.stdout.write(json.dumps(res, indent=1) + "\n")
        return
    for k in ("a", "b"):
        f = res[k]
        out.print(f"{k.upper()} {f['model']} ({f['sha256'][:12]}): recall {f['recall']:.3f} ({f['matched']}/{f['truth']}), "
                  f"precision {f['precision']:.3f} ({f['matched']}/{f['predicted']}) on {len(sources)} reviewed sources",
                  highlight=False)


@models_app.command("promote")
def models_promote(
    model: Annotated[str, typer.Argument(help="A .pt file or a registered SHA-256 (prefix).")],
    dataset: Annotated[Path | None, typer.Option(help="Dataset folder whose validation sources decide.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Promote even if worse (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option(help="Why (recorded in the custody log).")] = None,
    user: UserOption = "cli",
    config: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """Make MODEL the default for later runs if it is at least as good as the current default on recall and
    precision over held-out reviewed footage. Earlier runs keep their model and results."""
    from .registry import promote, resolve

    with _friendly():
        cfg = _config(config)
        store = _store()
        try:
            new, old = promote(state.workspace, store, cfg, resolve(store, cfg, model), user, force, reason,
                               dataset / "manifest.json" if dataset else None)
        except _registry_errors() as e:
            raise ConfigError(str(e)) from None
    out.print(f"promoted {new.model} ({new.sha256[:12]}): {new.score}; previous {old.model}: {old.score}",
              highlight=False, soft_wrap=True)


db_app = typer.Typer(help="The evidence database: SQLite in the workspace, or PostgreSQL shared by many machines.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("migrate")
def db_migrate() -> None:
    """Create or upgrade the database's schema to this vaudit's version (every command also does it)."""
    from .store import Store

    with _friendly():
        store = Store(state.workspace.db, migrate=False)
        before, after = store.migrate()
        where = store.where
        store.close()
    out.print(f"{where}: schema version {before} -> {after}" if after != before else
              f"{where}: schema version {after}, up to date", highlight=False, soft_wrap=True)


@db_app.command("copy")
def db_copy(
    source: Annotated[str, typer.Argument(help="Database to copy: an SQLite file or a postgresql:// URL.")],
    destination: Annotated[str, typer.Argument(help="An empty PostgreSQL database, or a new SQLite file.")],
) -> None:
    """Copy a whole evidence database, ids and custody chain included: an SQLite workspace into PostgreSQL, or
    PostgreSQL into an SQLite file (an offline copy). Copy the evidence folder beside it (rsync); then
    `vaudit verify` against the copy checks both."""
    from .dbcopy import copy

    with _friendly():
        report = copy(source, destination)
    out.print(f"copied {report.source} -> {report.destination}: " + ", ".join(
        f"{t} {n}" for t, n in report.rows.items()), highlight=False, soft_wrap=True)
    out.print(f"custody chain intact, head entry {report.custody_head[0]} {report.custody_head[1]}", highlight=False,
              soft_wrap=True)


@db_app.command("use")
def db_use(
    database: Annotated[str, typer.Argument(help="postgresql://user@host/name, or an SQLite file.")],
) -> None:
    """Write the database (and --evidence, when given) into this workspace's workspace.yaml, so every later
    command here uses them without options."""
    from .db import is_url
    from .store import Store
    from .workspace import write_config

    with _friendly():
        database = database if is_url(database) else str(Path(database).expanduser().absolute())
        Store(database).close()  # reachable, and at this vaudit's schema
        path = write_config(state.workspace.root, database, state.workspace.evidence_root)
    out.print(f"wrote {path}", highlight=False)


user_app = typer.Typer(help="Accounts for the review web app (analyst, assessor, admin).", no_args_is_help=True)
app.add_typer(user_app, name="user")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; keep 127.0.0.1 unless behind a TLS proxy.")] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    secure_cookies: Annotated[bool, typer.Option("--secure-cookies", help="Mark cookies Secure (HTTPS).")] = False,
    config: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """Start the review workstation (web app) over this workspace."""
    from .review import commands

    with _friendly():
        cfg = _config(config)
        try:
            commands.serve(state.workspace, cfg, host, port, secure_cookies=secure_cookies)
        except (ValueError, LookupError) as e:
            raise ConfigError(str(e)) from None


def _password(prompt: bool) -> str:
    if not sys.stdin.isatty() or not prompt:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


@user_app.command("add")
def user_add(name: str, role: Annotated[str, typer.Option(help="analyst | assessor | admin")] = "analyst") -> None:
    """Create an account; the password is prompted for (or read from stdin)."""
    from .review import commands

    with _friendly():
        try:
            commands.user_add(state.workspace, name, role, _password(True))
        except (ValueError, LookupError) as e:
            raise ConfigError(str(e)) from None
    out.print(f"user {name} ({role}) added")


@user_app.command("list")
def user_list() -> None:
    """Accounts with role and state."""
    from .review import commands

    with _friendly():
        for u in commands.user_list(state.workspace):
            out.print(f"{u['name']}\t{u['role']}\t{'disabled' if u['disabled'] else 'active'}")


@user_app.command("disable")
def user_disable(name: str) -> None:
    """Disable an account; its open sessions stop working."""
    from .review import commands

    with _friendly():
        try:
            commands.user_disable(state.workspace, name)
        except (ValueError, LookupError) as e:
            raise ConfigError(str(e)) from None
    out.print(f"user {name} disabled")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
