"""Throughput of 1, 2 and 3 `vaudit run` workers against one PostgreSQL, on the same footage.

    python bench/workers.py                        # 8 sources of 40 s, workers 1,2,3, PostgreSQL + SQLite
    python bench/workers.py --sources 12 --per 3 --workers 1,2,4 --repeat 2
    python bench/workers.py --server postgresql://user@dbhost/postgres   # an existing server (makes databases)

Each configuration gets a fresh database and a fresh shared evidence folder; the footage is ingested once
(not timed), then N workers start at once, each a fresh `vaudit run --wait` process with its own workspace
folder (as if on its own machine), and the wall time runs until the last one exits, so model loading and
start-up count as they do in production. Every configuration must produce the same evidence (the listing
down to each clip's SHA-256) as the first; the throughput is footage seconds per wall second, and the
ratio to one PostgreSQL worker is the figure to read: workers on one machine share its cores, so more
of them help only as far as one worker leaves cores idle.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VAUDIT = [sys.executable, "-m", "pipeline.cli"]


def join_samples(folder: Path, sources: int, per: int) -> list[Path]:
    """``sources`` distinct videos, each ``per`` shipped samples joined by stream copy (cheap to make, real
    to decode), named so that their capture time comes from the file name."""
    samples = sorted((ROOT / "samples").rglob("*.mp4"))
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for n in range(sources):
        parts = [samples[(n + k * (1 + n // len(samples))) % len(samples)] for k in range(per)]
        listing = folder / f".parts{n}.txt"
        listing.write_text("".join(f"file '{p}'\n" for p in parts))
        path = folder / f"VID_202611{n % 28 + 1:02d}_0900{n % 60:02d}.mp4"
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i",
                        str(listing), "-c", "copy", str(path)], check=True)
        listing.unlink()
        out.append(path)
    if len({p.read_bytes() for p in out}) != len(out):
        raise SystemExit("footage: two sources came out identical; use fewer --sources or a larger --per")
    return out


def _vaudit(ws: Path, *args: str, env: dict | None = None) -> str:
    r = subprocess.run([*VAUDIT, "--workspace", str(ws), *args], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, **(env or {})}, check=False)
    if r.returncode:
        raise SystemExit(f"vaudit {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
    return r.stdout


def _listing(ws: Path) -> list[tuple]:
    rows = json.loads(_vaudit(ws, "violations", "--json"))
    return sorted((Path(r["source_path"]).name, r["category"], r["start_s"], r["end_s"], r["clip_sha256"])
                  for r in rows)


def measure(footage: Path, work: Path, workers: int, url: str | None) -> dict:
    """Ingest, then ``workers`` simultaneous workers until done; wall seconds and what each processed."""
    shutil.rmtree(work, ignore_errors=True)
    machines = [work / f"machine{k}" for k in range(1, workers + 1)]
    evidence = work / "evidence"
    for m in machines:
        args = ["--evidence", str(evidence), "db", "use", url] if url else ["--evidence", str(evidence), "db", "use",
                                                                              str(work / "evidence.db")]
        _vaudit(m, *args)
    _vaudit(machines[0], "ingest", str(footage), "--district", "城关镇")
    t0 = time.perf_counter()
    procs = [subprocess.Popen([*VAUDIT, "--workspace", str(m), "run", "--wait"], cwd=ROOT, text=True,
                              env={**os.environ, "VAUDIT_WORKER": m.name}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for m in machines]
    outs = [p.communicate() for p in procs]
    wall = time.perf_counter() - t0
    if any(p.returncode for p in procs):
        raise SystemExit(f"a worker failed: {outs}")
    per_worker = [int(o.split(":")[1].split("sources processed")[0]) for o, _ in outs]
    if _vaudit(machines[-1], "verify").find("intact") < 0:
        raise SystemExit("vaudit verify did not report the evidence intact")
    from pipeline.store import Store

    store = Store(url or work / "evidence.db")
    stats = [json.loads(r["stats"]) for r in store.query("SELECT stats FROM runs WHERE finished_at IS NOT NULL")]
    store.close()
    # the commit of one source's rows and files (the stage that holds the database's write or chain lock)
    db_s = sum(s["timings"].get("db", 0.0) for s in stats) / max(1, sum(s["processed"] for s in stats))
    return {"wall_s": wall, "sources_per_worker": per_worker, "listing": _listing(machines[0]), "db_s": db_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sources", type=int, default=8)
    ap.add_argument("--per", type=int, default=2, help="shipped 20 s samples joined into each source")
    ap.add_argument("--workers", default="1,2,3")
    ap.add_argument("--repeat", type=int, default=1, help="runs per configuration; the fastest is reported")
    ap.add_argument("--server", help="an existing PostgreSQL server's URL (default: a throwaway local one)")
    ap.add_argument("--no-sqlite", action="store_true", help="skip the one-worker SQLite reference")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import psycopg

    from pipeline import pgtemp

    server = None if args.server else pgtemp.start()
    admin = args.server or server.url()  # type: ignore[union-attr]
    tmp = Path(tempfile.mkdtemp(prefix="vaudit-bench-workers-"))
    try:
        footage = tmp / "footage"
        files = join_samples(footage, args.sources, args.per)
        probe = [float(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                                       "csv=p=0", str(f)], capture_output=True, text=True, check=True).stdout)
                 for f in files]
        footage_s = sum(probe)
        configs = ([] if args.no_sqlite else [("sqlite", 1)]) + [
            ("postgresql", int(n)) for n in args.workers.split(",")]
        print(f"footage: {len(files)} sources, {footage_s:.0f} s; {os.cpu_count()} CPU cores; each configuration "
              f"best of {args.repeat}", flush=True)
        results, reference = [], None
        for engine, n in configs:
            best = None
            for rep in range(args.repeat):
                url = None
                if engine == "postgresql":
                    name = f"bench_{n}_{rep}_{os.getpid()}"
                    with psycopg.connect(admin, autocommit=True) as c:
                        c.execute(f'DROP DATABASE IF EXISTS "{name}"')
                        c.execute(f'CREATE DATABASE "{name}"')
                    url = admin.rsplit("/", 1)[0] + "/" + name
                r = measure(footage, tmp / "work", n, url)
                if url:
                    with psycopg.connect(admin, autocommit=True) as c:
                        c.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                if best is None or r["wall_s"] < best["wall_s"]:
                    best = r
            assert best is not None
            reference = reference or best["listing"]
            same = best["listing"] == reference
            results.append({"engine": engine, "workers": n, "wall_s": round(best["wall_s"], 2),
                            "x_real_time": round(footage_s / best["wall_s"], 2),
                            "sources_per_worker": best["sources_per_worker"], "same_evidence": same,
                            "violations": len(best["listing"]), "commit_s_per_source": round(best["db_s"], 3)})
            print(f"  {engine:10} {n} worker(s): {best['wall_s']:6.1f} s wall, {footage_s / best['wall_s']:5.1f}x real "
                  f"time, sources per worker {best['sources_per_worker']}, commit {best['db_s']:.3f} s per source, "
                  f"same evidence: {'yes' if same else 'NO'}",
                  flush=True)
        one = next(r for r in results if r["engine"] == "postgresql" and r["workers"] == 1) \
            if any(r["engine"] == "postgresql" and r["workers"] == 1 for r in results) else results[0]
        print(f"\n{'engine':10} {'workers':>7} {'wall s':>7} {'x real time':>11} {'ratio to 1 worker':>17} "
              f"{'commit s/source':>15}")
        for r in results:
            r["ratio"] = round(r["x_real_time"] / one["x_real_time"], 2)
            print(f"{r['engine']:10} {r['workers']:>7} {r['wall_s']:>7.1f} {r['x_real_time']:>11.2f} {r['ratio']:>17.2f} "
                  f"{r['commit_s_per_source']:>15.3f}")
        if not all(r["same_evidence"] for r in results):
            raise SystemExit("configurations disagree on the evidence")
        if args.json:
            args.json.write_text(json.dumps({"footage_s": footage_s, "sources": len(files),
                                             "cpu_cores": os.cpu_count(), "results": results}, indent=1) + "\n")
    finally:
        if server:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
