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
import zipfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import builders
import cv2
import pytest
from builders import Known, build_workspace
from conftest import ENGINES, database_for
from PIL import Image

from pipeline import config as config_mod
from pipeline import custody
from pipeline.export import (
    PackError,
    RedactionError,
    charts,
    counts,
    pack,
    parse_period,
    redact,
    write_counts,
)

CN = timezone(timedelta(hours=8))
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


@pytest.fixture(scope="module", params=ENGINES)
def built(tmp_path_factory, request):
    tmp = tmp_path_factory.mktemp("export")
    ws, store = build_workspace(tmp, PLANTED, database=database_for(request.param, request))
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


def test_charts_are_real_images_with_chinese_text(built, november, tmp_path):
    import warnings

    _, store, cfg = built
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = charts(store, cfg, november, tmp_path / "charts")
    assert not [w for w in caught if "missing from font" in str(w.message)]  # the CJK font was used
    assert [p.name for p in paths] == ["by_district_2026-11.png", "trend_2026-11.png"]
    for p in paths:
        with Image.open(p) as im:
            im.verify()
        with Image.open(p) as im:
            assert im.format == "PNG" and im.width >= 600 and im.height >= 400
            assert len(im.convert("RGB").getcolors(1 << 20)) > 50  # drawn, not blank


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_verifier(pack_dir: Path, target: Path | None = None) -> subprocess.CompletedProcess:
    """The pack's own script, run by a bare interpreter in isolated mode: standard library only."""
    args = [sys.executable, "-I", str(pack_dir / "verify_pack.py")] + ([str(target)] if target else [])
    return subprocess.run(args, check=False, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def made_pack(built, november, tmp_path_factory):
    ws, store, cfg = built
    before = {p: sha256(p) for p in ws.root.rglob("*") if p.is_file() and p.suffix in (".mp4", ".jpg")}
    out = pack(ws, store, cfg, november, tmp_path_factory.mktemp("packs") / "2026-11", actor="assessor1")
    assert {p: sha256(p) for p in before} == before  # evidence untouched
    return out


def test_pack_manifest_lists_every_file_with_hash_and_ids(built, made_pack):
    _, store, _ = built
    manifest = json.loads((made_pack / "manifest.json").read_text(encoding="utf-8"))
    on_disk = {p.relative_to(made_pack).as_posix() for p in made_pack.rglob("*") if p.is_file()}
    assert {f["path"] for f in manifest["files"]} == on_disk - {"manifest.json"}
    for f in manifest["files"]:
        assert (f["sha256"], f["size"]) == (sha256(made_pack / f["path"]), (made_pack / f["path"]).stat().st_size)
    expected = {r["id"] for r in store.query(
        """SELECT v.id FROM violations v JOIN sources s ON s.id = v.source_id WHERE v.run_id = s.current_run_id
           AND v.status = 'confirmed' AND datetime(v.start_time) >= '2026-10-31 16:00:00'
           AND datetime(v.start_time) < '2026-11-30 16:00:00'""")}
    assert set(manifest["violations"]) == expected and len(expected) == 7
    media = [f for f in manifest["files"] if f["role"] in ("clip", "proxy", "keyframe")]
    assert {(f["violation_id"], f["role"]) for f in media} >= {(v, k) for v in expected for k in ("clip", "keyframe")}
    for f in media:  # each copy is byte-identical to the artifact row it names
        art = store.query("SELECT * FROM artifacts WHERE id = ?", [f["artifact_id"]])[0]
        assert (art["violation_id"], art["path"], art["sha256"]) == (f["violation_id"], f["original_path"], f["sha256"])
        v = store.query("SELECT source_id, run_id FROM violations WHERE id = ?", [f["violation_id"]])[0]
        assert (v["source_id"], v["run_id"]) == (f["source_id"], f["run_id"])
    for vid in expected:
        excerpt = json.loads((made_pack / "custody" / f"{vid}.json").read_text(encoding="utf-8"))
        assert excerpt["violation"]["id"] == vid and excerpt["violation"]["status"] == "confirmed"
        events = [e["event"] for e in excerpt["custody"]]
        assert {"source_ingested", "violation_created", "decision_confirm"} <= set(events)
        for e in excerpt["custody"]:  # an excerpt is not a contiguous chain, but each entry hashes from its prev
            entry = {k: e[k] for k in ("seq", "at", "actor", "event", "entity", "entity_id", "payload")}
            assert custody.entry_hash(e["prev_hash"], entry) == e["hash"]
    html = (made_pack / "index.html").read_text(encoding="utf-8")
    assert "2026年11月" in html and html.count('class="card"') == 7 and "http" not in html  # self-contained


def test_pack_is_logged_in_custody(built, made_pack):
    _, store, _ = built
    events = store.query("SELECT actor, payload FROM custody WHERE event = 'export_pack' AND actor = 'assessor1'")
    payload = json.loads(events[0]["payload"])
    assert events[0]["actor"] == "assessor1" and payload["period"] == "2026-11" and len(payload["violations"]) == 7
    assert payload["manifest_sha256"] == sha256(made_pack / "manifest.json")
    assert custody.verify(store.conn) == []


def test_verify_pack_catches_tampering(made_pack, tmp_path):
    ok = run_verifier(made_pack)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    flipped = shutil.copytree(made_pack, tmp_path / "flipped")
    clip = next((flipped / "media").rglob("clip.mp4"))
    data = bytearray(clip.read_bytes())
    data[len(data) // 2] ^= 0x01
    clip.write_bytes(bytes(data))
    bad = run_verifier(flipped)
    assert bad.returncode == 1 and clip.relative_to(flipped).as_posix() in bad.stdout

    # a forger edits a custody excerpt and even updates the manifest to match: the entry hash still breaks
    edited = shutil.copytree(made_pack, tmp_path / "edited")
    excerpt_path = next((edited / "custody").glob("*.json"))
    excerpt = json.loads(excerpt_path.read_text(encoding="utf-8"))
    created = next(e for e in excerpt["custody"] if e["event"] == "violation_created")
    created["payload"]["confidence"] = 0.99
    excerpt_path.write_text(json.dumps(excerpt, ensure_ascii=False, indent=2), encoding="utf-8")
    manifest = json.loads((edited / "manifest.json").read_text(encoding="utf-8"))
    for f in manifest["files"]:
        if f["path"] == excerpt_path.relative_to(edited).as_posix():
            f["sha256"], f["size"] = sha256(excerpt_path), excerpt_path.stat().st_size
    (edited / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    bad = run_verifier(edited)
    assert bad.returncode == 1 and f"custody entry {created['seq']} altered" in bad.stdout

    added = shutil.copytree(made_pack, tmp_path / "added")
    (added / "media" / "extra.jpg").write_bytes(b"x")
    assert run_verifier(added).returncode == 1


def test_pack_as_zip_one_district(built, november, tmp_path):
    ws, store, cfg = built
    out = pack(ws, store, cfg, november, tmp_path / "城关镇-2026-11.zip", district=A)
    assert out.is_file() and not list(tmp_path.glob(".*partial*"))
    manifest = json.loads(zipfile.ZipFile(out).read("manifest.json"))
    assert manifest["district"] == A and len(manifest["violations"]) == 3
    extracted = tmp_path / "x"
    zipfile.ZipFile(out).extractall(extracted)
    assert run_verifier(extracted, out).returncode == 0
    with pytest.raises(PackError, match="already exists"):
        pack(ws, store, cfg, november, out)


def test_pack_refuses_altered_evidence(built, november, tmp_path):
    ws, store, cfg = built
    kf = ws.abs(store.query("SELECT path FROM artifacts WHERE kind = 'keyframe' ORDER BY id LIMIT 1")[0]["path"])
    original = kf.read_bytes()
    try:
        kf.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        with pytest.raises(PackError, match="does not match the sha256"):
            pack(ws, store, cfg, november, tmp_path / "p")
    finally:
        kf.write_bytes(original)
    assert not (tmp_path / "p").exists() and not list(tmp_path.iterdir())


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_pack_page_renders_every_image_and_video(made_pack):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            failed: list[str] = []
            # ERR_ABORTED is our own v.load() below cancelling the metadata-only request; anything else is real
            page.on("requestfailed", lambda r: "ERR_ABORTED" in (r.failure or "") or failed.append(r.url))
            page.goto(made_pack.joinpath("index.html").as_uri())
            page.wait_for_load_state("load")
            state = page.evaluate("""async () => {
              const videos = [...document.querySelectorAll('video')];
              await Promise.all(videos.map(v => new Promise(done => {
                if (v.readyState >= 2) return done();
                v.addEventListener('loadeddata', done); v.addEventListener('error', done);
                v.preload = 'auto'; v.load(); setTimeout(done, 10000);
              })));
              return {images: [...document.images].map(i => [i.getAttribute('src'), i.naturalWidth]),
                      videos: videos.map(v => [v.getAttribute('src'), v.readyState, v.error && v.error.code])};
            }""")
            assert len(state["images"]) == 2 + 7 and len(state["videos"]) == 7
            assert [src for src, width in state["images"] if width == 0] == []
            assert [v for v in state["videos"] if v[1] < 2 or v[2] is not None] == []
            assert failed == []
            assert page.locator("h1").inner_text().startswith("2026年11月")
            if os.environ.get("VAUDIT_SCREENSHOTS") == "1":
                page.evaluate("document.querySelectorAll('video').forEach(v => { v.currentTime = 1; })")
                page.wait_for_timeout(500)
                page.screenshot(path=str(ROOT / "docs" / "export-pack.png"), full_page=True)
        finally:
            browser.close()


needs_cascades = pytest.mark.skipif(not redact.available(),
                                    reason="this OpenCV has no Haar cascades (OpenCV 5 removed them)")


def _face() -> Path:
    from matplotlib import cbook

    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))  # a real portrait matplotlib ships


def _plate_image(path: Path) -> Path:
    """A street-grey frame with a white plate and black characters, as a rear number plate looks."""
    from PIL import ImageDraw, ImageFont

    im = Image.new("RGB", (640, 360), (90, 90, 90))
    d = ImageDraw.Draw(im)
    font = ImageFont.truetype("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", 40)
    d.rectangle((150, 150, 470, 214), fill=(245, 245, 245), outline=(0, 0, 0), width=4)
    d.text((165, 150), "A123BC 77", font=font, fill=(0, 0, 0))
    im.save(path, quality=95)
    return path


def _diff(a: Path, b: Path, box: tuple[int, int, int, int]) -> tuple[float, float]:
    """Mean absolute pixel difference inside ``box`` (x, y, w, h), and outside it grown by a quarter (the
    blur covers a margin round the detection)."""
    import numpy as np

    x = np.asarray(Image.open(a).convert("L"), float)
    y = np.asarray(Image.open(b).convert("L"), float)
    inside, near = np.zeros(x.shape, bool), np.zeros(x.shape, bool)
    bx, by, bw, bh = box
    inside[by:by + bh, bx:bx + bw] = True
    near[max(0, by - bh // 4):by + bh + bh // 4, max(0, bx - bw // 4):bx + bw + bw // 4] = True
    d = np.abs(x - y)
    return float(d[inside].mean()), float(d[~near].mean())


@needs_cascades
def test_blur_pixelates_faces_and_plates(tmp_path):
    r = redact.load_redactor(faces=True, plates=True)
    face = _face()
    found = r.detect(cv2.imread(str(face)))
    assert len(found["faces"]) == 1
    assert r.image(face, tmp_path / "face.jpg") == {"faces": 1, "plates": 0}
    inside, outside = _diff(face, tmp_path / "face.jpg", found["faces"][0])
    assert inside > 8 and outside < 3, (inside, outside)  # the face is gone, the rest is as it was
    plate = _plate_image(tmp_path / "plate.jpg")
    box = r.detect(cv2.imread(str(plate)))["plates"]
    assert len(box) == 1 and r.image(plate, tmp_path / "plate_blurred.jpg")["plates"] == 1
    inside, outside = _diff(plate, tmp_path / "plate_blurred.jpg", box[0])
    assert inside > 8 and outside < 3, (inside, outside)


def _face_video(path: Path, seconds: int, seed: int) -> Path:
    """The builder's test pattern with a portrait in the corner: footage in which a face must be blurred."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc2=size=320x240:rate=25:duration={seconds}", "-loop", "1", "-i", str(_face()), "-f", "lavfi",
         "-i", f"sine=frequency={300 + seed}:duration={seconds}", "-filter_complex",
         "[1:v]scale=128:150[f];[0:v][f]overlay=16:16:shortest=1[v]", "-map", "[v]", "-map", "2:a",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "25", "-c:a", "aac", "-shortest", str(path)],
        check=True)
    return path


@needs_cascades
def test_blurred_pack_changes_copies_never_originals(tmp_path, monkeypatch):
    monkeypatch.setattr(builders, "_video", _face_video)
    ws, store = build_workspace(tmp_path, [_k(A, "garbage", datetime(2026, 11, 3, 9, 0, tzinfo=CN), 2.0,
                                              "confirmed", "face")])
    cfg = config_mod.load()
    arts = store.query("SELECT kind, path, sha256 FROM artifacts")
    out = pack(ws, store, cfg, parse_period("2026-11", cfg.tz), tmp_path / "blurred", blur_faces=True,
               blur_plates=True)
    for a in arts:  # the evidence in the workspace is byte-for-byte what was recorded
        assert sha256(ws.abs(a["path"])) == a["sha256"]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    clip = next(f for f in manifest["files"] if f["role"] == "clip")
    assert clip["redacted"]["faces"] > 0 and clip["sha256"] != clip["original_sha256"]
    assert manifest["blurred"] == {"faces": True, "plates": True}
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(out / clip["path"])],
        capture_output=True, text=True, check=True).stdout)
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    assert (video["codec_name"], video["pix_fmt"]) == ("h264", "yuv420p")
    assert any(s["codec_type"] == "audio" for s in probe["streams"])
    assert run_verifier(out).returncode == 0
    store.close()


@pytest.mark.skipif(redact.available(), reason="this OpenCV has the cascades")
def test_blur_without_cascades_fails_before_writing(built, november, tmp_path):
    ws, store, cfg = built
    logged = store.query("SELECT count(*) n FROM custody WHERE event = 'export_pack'")[0]["n"]
    with pytest.raises(RedactionError, match="Haar cascades"):
        pack(ws, store, cfg, november, tmp_path / "p", blur_faces=True)
    assert list(tmp_path.iterdir()) == []
    assert store.query("SELECT count(*) n FROM custody WHERE event = 'export_pack'")[0]["n"] == logged
