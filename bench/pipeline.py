"""Throughput benchmark: vaudit's pipeline against the naive Ultralytics baseline, in one command.

    python bench/pipeline.py                     # 1080p30 H.264 at 12 Mbps, 1 s keyframes, 4 min of footage
    python bench/pipeline.py --gop 10            # long-GOP footage
    python bench/pipeline.py --codec hevc
    python bench/pipeline.py --video FILE.mp4    # your own footage (no recall figure without ground truth)

It renders footage with `vaudit synth` (a 60 s clip repeated to --duration by stream copy, so decoding
cost is real while rendering stays cheap), then measures, each in its own process so peak RSS is its own:
  1. vaudit: ingest → sample → detect → track/judge → clips → DB, per stage and in total, in one process;
     and "vaudit CLI": the same as a user runs it, `vaudit ingest` then `vaudit run` as fresh processes;
  2. baseline: Ultralytics `model.predict(source=video, vid_stride=fps/rate, stream=True)` with the same
     model, size and sampling rate, followed by the same track, judge and clip stages;
  3. decode-only: PyAV decoding every frame, the floor for any decode-everything design;
and prints minutes per footage hour, the vaudit/baseline ratio, peak RSS and event recall for both.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class PeakRss:
    """Samples this process's RSS every 50 ms; the peak is what the OS must have free."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        p = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, p.memory_info().rss)
            time.sleep(0.05)

    def __enter__(self) -> Self:
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()


def make_footage(out: Path, duration: float, size: tuple[int, int], fps: float, gop: float, codec: str,
                 seed: int, bitrate: str | None = None) -> tuple[Path, list[dict]]:
    """A `duration`-second video: one rendered clip of up to 60 s repeated by stream copy, with its truth."""
    from pipeline.synth import render_video

    unit = min(60.0, duration)
    gt = render_video(out, "unit", seed=seed, duration=unit, size=size, fps=fps, gop_s=gop, codec=codec, crf=23)
    if bitrate:  # camera-like constant bitrate (rendered streets compress far better than real ones)
        lib = "libx264" if codec == "h264" else "libx265"
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(out / "unit.mp4"), "-c:v", lib,
                        "-preset", "veryfast", "-b:v", bitrate, "-minrate", bitrate, "-maxrate", bitrate, "-bufsize",
                        bitrate, "-g", str(round(gop * fps)), "-keyint_min", str(round(gop * fps)), "-sc_threshold",
                        "0", "-pix_fmt", "yuv420p", *(["-tag:v", "hvc1"] if codec == "hevc" else []),
                        str(out / "unit_cbr.mp4")], check=True)
        os.replace(out / "unit_cbr.mp4", out / "unit.mp4")
    reps = max(1, round(duration / unit))
    lst = out / "list.txt"
    lst.write_text("".join(f"file '{out / 'unit.mp4'}'\n" for _ in range(reps)))
    video = out / "footage.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i",
                    str(lst), "-c", "copy", "-movflags", "+faststart", str(video)], check=True)
    truth = [dict(v, start_s=v["start_s"] + k * unit, end_s=v["end_s"] + k * unit)
             for k in range(reps) for v in gt["violations"]]
    return video, truth


def run_vaudit(video: str, cfg_path: str | None, model: str | None, q: mp.Queue) -> None:
    from pipeline import config as config_mod
    from pipeline.ingest import ingest
    from pipeline.run import run
    from pipeline.store import Store
    from pipeline.workspace import Workspace

    cfg = config_mod.load(cfg_path)
    with tempfile.TemporaryDirectory() as d, PeakRss() as rss:
        ws = Workspace(Path(d) / "ws").create()
        t0 = time.perf_counter()
        store = Store(ws.db_path)
        ingest(store, cfg, [Path(video)])
        t_ingest = time.perf_counter() - t0
        store.close()
        summary = run(ws, cfg, Path(model) if model else None)
        total = time.perf_counter() - t0
        store = Store(ws.db_path)
        found = [{"category": r["category"], "start_s": r["start_s"], "end_s": r["end_s"]} for r in store.violations()]
        store.close()
    q.put({"total": total, "stages": {"ingest": t_ingest, **summary.timings}, "counts": summary.counts,
           "rss": rss.peak, "found": found})


def run_cli(video: str, cfg_path: str | None, model: str | None, q: mp.Queue) -> None:
    """What a user runs: `vaudit ingest` then `vaudit run`, each a fresh process (imports, model load
    and workspace set-up included)."""
    import resource

    exe = str(Path(sys.executable).parent / "vaudit")
    cfg = ["--config", cfg_path] if cfg_path else []
    stages = {}
    with tempfile.TemporaryDirectory() as d:
        ws = ["--workspace", str(Path(d) / "ws")]
        t0 = time.perf_counter()
        for step, extra in (("ingest", [video]), ("run", ["--model", model] if model else [])):
            t = time.perf_counter()
            subprocess.run([exe, *ws, step, *extra, *cfg], check=True, capture_output=True)
            stages[step] = time.perf_counter() - t
        total = time.perf_counter() - t0
        found = json.loads(subprocess.run([exe, *ws, "violations", "--json", *cfg], check=True,
                                          capture_output=True, text=True).stdout)
    q.put({"total": total, "stages": stages, "rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
           "found": [{k: v[k] for k in ("category", "start_s", "end_s")} for v in found]})


def run_baseline(video: str, cfg_path: str | None, model: str | None, q: mp.Queue) -> None:
    """What one would build from the Ultralytics docs: predict on the video with vid_stride."""
    from pipeline import config as config_mod
    from pipeline import evidence
    from pipeline.detect import YoloDetector
    from pipeline.events import EventBuilder
    from pipeline.ingest import probe
    from pipeline.records import Frame, Source
    from pipeline.track import MotionEstimator

    cfg = config_mod.load(cfg_path)
    # the main weights alone, as Ultralytics would run them (an ensemble's members are vaudit's own work)
    det = YoloDetector(cfg.model_copy(update={"model": cfg.model.model_copy(update={"backend": "torch"})}),
                       Path(model) if model else cfg.model.resolved_path())
    from ultralytics import YOLO, utils
    from ultralytics.utils import torch_utils

    torch_utils.NUM_THREADS = utils.NUM_THREADS  # Ultralytics' own CPU threads (cores - 1), as a user gets them
    yolo = YOLO(str(det.path), task="detect")
    pr = probe(Path(video))
    stride = max(1, round(pr.fps / cfg.sampling.rate))
    full = (pr.width, pr.height)
    motion, events = MotionEstimator(), EventBuilder(cfg)
    timings = {"decode+detect": 0.0, "track": 0.0, "events": 0.0, "clips": 0.0}
    with tempfile.TemporaryDirectory() as d, PeakRss() as rss:
        t0 = time.perf_counter()
        t = time.perf_counter()
        results = yolo.predict(source=video, vid_stride=stride, stream=True, imgsz=cfg.model.imgsz,
                               conf=det.floor, verbose=False, device="cpu")
        for i, res in enumerate(results):
            frame = Frame(i * stride / pr.fps, i, False, res.orig_img)
            b = res.boxes
            found = det.to_detections(frame, b.xyxy.cpu().numpy(), b.conf.cpu().numpy(),
                                      b.cls.cpu().numpy().astype(int), full)
            timings["decode+detect"] += time.perf_counter() - t
            t = time.perf_counter()
            events.add(frame.t_s, found, motion.update(frame, full))
            timings["track"] += time.perf_counter() - t
            t = time.perf_counter()
        t = time.perf_counter()
        _, violations = events.finish()
        timings["events"] = time.perf_counter() - t
        t = time.perf_counter()
        src = Source(0, "", video, 0, pr, None, None, None, "unknown")
        for k, v in enumerate(violations):  # no keyframe index here: ffmpeg's own seek finds the keyframe
            want = max(0.0, v.start_s - cfg.categories[v.category].clip_pre_s)
            start, end = evidence.clip_range(v, cfg, [want], pr.duration_s)
            evidence.cut_clip(src, video, start, end, Path(d) / f"v{k}")
        timings["clips"] = time.perf_counter() - t
        total = time.perf_counter() - t0
    q.put({"total": total, "stages": timings, "rss": rss.peak,
           "found": [{"category": v.category, "start_s": v.start_s, "end_s": v.end_s} for v in violations]})


def run_decode_only(video: str, q: mp.Queue) -> None:
    import av

    with PeakRss() as rss:
        t0 = time.perf_counter()
        n = 0
        with av.open(video) as c:
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            for _ in c.decode(s):
                n += 1
        total = time.perf_counter() - t0
    q.put({"total": total, "stages": {"decode": total}, "rss": rss.peak, "frames": n})


def measure(target, *args) -> dict:
    q: mp.Queue = mp.get_context("spawn").Queue()
    p = mp.get_context("spawn").Process(target=target, args=(*args, q))
    p.start()
    res = q.get()
    p.join()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", help="measure this file instead of rendering one")
    ap.add_argument("--duration", type=float, default=240.0, help="seconds of footage to render")
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--gop", type=float, default=1.0, help="seconds between keyframes")
    ap.add_argument("--codec", default="h264", choices=["h264", "hevc"])
    ap.add_argument("--seed", type=int, default=9001)
    ap.add_argument("--bitrate", default="12M", help="re-encode the rendered clip at this constant bitrate ('' = crf 23)")
    ap.add_argument("--config", help="vaudit config (default configs/default.yaml)")
    ap.add_argument("--model", help="weights (default from config)")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--skip-cli", action="store_true", help="leave out `vaudit ingest` + `vaudit run` as processes")
    ap.add_argument("--skip-decode-only", action="store_true", help="e.g. for a 2-hour memory check")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()

    from pipeline.scoring import score_events

    w, h = (int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory() as d:
        truth = None
        if args.video:
            video = args.video
        else:
            print(f"rendering {args.duration:.0f} s of {args.size} {args.codec} footage, keyframe every {args.gop} s ...",
                  flush=True)
            video, truth = make_footage(Path(d), args.duration, (w, h), args.fps, args.gop, args.codec, args.seed,
                                        args.bitrate or None)
            video = str(video)
        from pipeline.ingest import probe

        footage_s = probe(Path(video)).duration_s
        runs = {"vaudit": measure(run_vaudit, video, args.config, args.model)}
        if not args.skip_cli:
            runs["vaudit CLI"] = measure(run_cli, video, args.config, args.model)
        if not args.skip_baseline:
            runs["baseline"] = measure(run_baseline, video, args.config, args.model)
        if not args.skip_decode_only:
            runs["decode-only"] = measure(run_decode_only, video)

    per_hour = {k: r["total"] / footage_s * 60 for k, r in runs.items()}  # minutes per footage hour
    print(f"\nfootage: {footage_s:.0f} s {args.size} {args.codec} gop {args.gop} s; "
          f"machine: {os.cpu_count()} cores")
    print(f"{'':12} {'wall s':>8} {'min/footage h':>14} {'x realtime':>10} {'peak RSS MB':>12} {'event recall':>13}")
    for k, r in runs.items():
        rec = ""
        if truth is not None and "found" in r:
            s = score_events(r["found"], truth)
            r["recall"], r["precision"] = s.recall, s.precision
            rec = f"{s.recall:.3f}"
        print(f"{k:12} {r['total']:8.1f} {per_hour[k]:14.2f} {footage_s / r['total']:10.1f} "
              f"{r['rss'] / 1e6:12.0f} {rec:>13}")
    for k in ("vaudit", "vaudit CLI", "baseline"):
        if k in runs:
            st = ", ".join(f"{n} {v:.1f}" for n, v in runs[k]["stages"].items())
            print(f"  {k} stages (s): {st}" + (f"; {runs[k]['counts']}" if "counts" in runs[k] else ""))
    if "baseline" in runs:
        for k in ("vaudit", "vaudit CLI"):
            if k in runs:
                print(f"{k} is {runs['baseline']['total'] / runs[k]['total']:.1f}x faster than the baseline")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "footage_s": footage_s, "per_hour_min": per_hour,
                                               "runs": {k: {kk: vv for kk, vv in r.items() if kk != "found"}
                                                        for k, r in runs.items()}}, indent=1))


if __name__ == "__main__":
    main()
