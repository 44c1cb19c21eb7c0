"""Attacks on the evidence (issue 20, items 1 and 2), each against a real workspace: real SQLite, real files.

An insider with write access to ``evidence.db`` or the workspace rewrites history the way the issue
describes; each attack must now make ``vaudit verify`` (or the pack's own ``verify_pack.py``) exit 1 and
name the row, field, entry, file or head that gives it away.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from builders import Known, build_workspace
from conftest import ROOT

from pipeline import anchor, custody, keys
from pipeline import config as config_mod
from pipeline.export import pack, parse_period
from pipeline.export import verify_pack as vp
from pipeline.export.pack import sign_manifest
from pipeline.records import Decision
from pipeline.store import Store
from pipeline.workspace import Workspace

TZ = ZoneInfo("Asia/Shanghai")


def vaudit(ws: Workspace, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "--workspace", str(ws.root), *args],
                          capture_output=True, text=True, cwd=ROOT, check=False, timeout=120)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Three violations in November 2026: 1 confirmed, 2 pending then rejected after the first signed head,
    3 confirmed by someone else. The office key exists; heads were witnessed along the way."""
    tmp = tmp_path_factory.mktemp("base")
    ws, store = build_workspace(tmp, [
        Known("城关镇", "garbage", datetime(2026, 11, 3, 9, 0, tzinfo=TZ), status="confirmed", source_key="a"),
        Known("城关镇", "parking", datetime(2026, 11, 3, 9, 0, tzinfo=TZ), start_s=4, end_s=6, source_key="a"),
        Known("西湖乡", "stall", datetime(2026, 11, 5, 15, 0, tzinfo=TZ), status="confirmed", user="analyst2"),
    ])
    keys.init(ws.signing_key)
    anchor.witness(ws, store, "run")
    store.record_decision(Decision(2, "analyst1", "reject", reason="duplicate"))
    anchor.witness(ws, store, "review_batch")
    store.close()
    return ws


@pytest.fixture
def ws(base, tmp_path) -> Workspace:
    """A private copy of the base workspace (its originals stay shared and untouched)."""
    return Workspace(Path(shutil.copytree(base.root, tmp_path / "ws")))


def attacker(ws: Workspace) -> sqlite3.Connection:
    """Raw write access to evidence.db, append-only triggers dropped."""
    c = sqlite3.connect(ws.db_path, isolation_level=None)
    c.execute("DROP TRIGGER IF EXISTS custody_no_update")
    c.execute("DROP TRIGGER IF EXISTS custody_no_delete")
    return c


def rechain(c: sqlite3.Connection) -> None:
    """Recompute every hash so the edited log is a valid chain again (what a careful forger does)."""
    rows = c.execute("SELECT seq, at, actor, event, entity, entity_id, payload, prev_hash, hash FROM custody"
                     " ORDER BY seq").fetchall()
    prev = custody.GENESIS
    for entry, _, _ in custody.rows_to_entries(rows):
        h = custody.entry_hash(prev, entry)
        c.execute("UPDATE custody SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, entry["seq"]))
        prev = h


def failed(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 1, r.stdout + r.stderr
    for n in needles:
        assert n in r.stdout, f"{n!r} not in:\n{r.stdout}"


def decision_entry(c: sqlite3.Connection, vid: int, event: str) -> int:
    return c.execute("SELECT seq FROM custody WHERE entity = 'violation' AND entity_id = ? AND event = ?",
                     (vid, event)).fetchone()[0]


def test_untouched_workspace_verifies_with_its_witness(ws):
    r = vaudit(ws, "verify")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "intact" in r.stdout and "2 witnessed heads" in r.stdout


@pytest.mark.parametrize("field,sql,needle", [
    ("status", "UPDATE violations SET status = 'rejected' WHERE id = 1",
     "violation 1: status is 'rejected' in the table, but the custody log (entry {e}) says 'confirmed'"),
    ("category", "UPDATE violations SET category = 'stall' WHERE id = 1",
     "violation 1: category is 'stall' in the table, but the custody log (entry {e}) says 'garbage'"),
    ("district", "UPDATE sources SET district = '西湖乡' WHERE id = 1",
     "source 1: district is '西湖乡' in the table, but the custody log (entry {s}) says '城关镇'"),
    ("trim", "UPDATE violations SET end_s = 2.5 WHERE id = 1", "violation 1: end_s is 2.5 in the table"),
    ("hidden", "UPDATE sources SET current_run_id = NULL WHERE id = 1", "source 1: current_run_id is None"),
])
def test_state_changed_behind_the_log_is_named_by_row_and_field(ws, field, sql, needle):
    c = attacker(ws)
    e = decision_entry(c, 1, "decision_confirm")
    s = c.execute("SELECT seq FROM custody WHERE event = 'source_ingested' AND entity_id = 1").fetchone()[0]
    c.execute(sql)
    c.close()
    failed(vaudit(ws, "verify"), needle.format(e=e, s=s))


def test_deleted_decisions_are_named(ws):
    c = attacker(ws)
    did = c.execute("SELECT id FROM decisions WHERE violation_id = 3").fetchone()[0]
    e = decision_entry(c, 3, "decision_confirm")
    c.execute("DELETE FROM decisions WHERE violation_id = 3")
    c.execute("UPDATE violations SET status = 'pending' WHERE id = 3")
    c.close()
    failed(vaudit(ws, "verify"),
           f"decision {did}: analyst2 confirm on violation 3, recorded in custody entry {e}, is missing",
           "violation 3: status is 'pending' in the table, but the custody log")


def test_forged_decision_without_entry_is_named(ws):
    c = attacker(ws)
    c.execute("INSERT INTO decisions (violation_id, user, action, created_at) VALUES (2, 'mallory', 'confirm', 'x')")
    c.close()
    failed(vaudit(ws, "verify"), "mallory confirm on violation 2 has no custody entry")


def test_custody_edited_and_rechained_with_the_state_to_match_is_a_rewrite(ws):
    """The full forgery: the confirm of violation 1 becomes a reject in the log, the state and the
    decision row; the chain is recomputed. Only the witnessed heads can tell, and they do."""
    c = attacker(ws)
    e = decision_entry(c, 1, "decision_confirm")
    payload = json.loads(c.execute("SELECT payload FROM custody WHERE seq = ?", (e,)).fetchone()[0])
    payload.update(status="rejected", reason="false_detection")
    c.execute("UPDATE custody SET event = 'decision_reject', payload = ? WHERE seq = ?",
              (custody.canonical(payload), e))
    c.execute("UPDATE decisions SET action = 'reject', reason = 'false_detection' WHERE id = ?",
              (payload["decision_id"],))
    c.execute("UPDATE violations SET status = 'rejected' WHERE id = 1")
    rechain(c)
    c.close()
    with sqlite3.connect(ws.db_path) as check:
        assert custody.verify(check) == []  # the chain itself is perfect again
    failed(vaudit(ws, "verify"), "custody log: rewritten: the head witnessed at", "witnessed heads disagree")


def test_custody_entry_deleted_and_renumbered_is_reported(ws):
    c = attacker(ws)
    e = decision_entry(c, 3, "decision_confirm")
    did = json.loads(c.execute("SELECT payload FROM custody WHERE seq = ?", (e,)).fetchone()[0])["decision_id"]
    c.execute("DELETE FROM custody WHERE seq = ?", (e,))
    c.execute("UPDATE custody SET seq = seq - 1 WHERE seq > ?", (e,))
    c.execute("DELETE FROM decisions WHERE id = ?", (did,))
    c.execute("UPDATE violations SET status = 'pending' WHERE id = 3")
    rechain(c)
    c.close()
    failed(vaudit(ws, "verify"), "custody log: truncated", "custody log: rewritten")


def test_last_entries_cut_off_with_their_state_is_truncation(ws):
    """Undo the last decision (violation 2's reject) cleanly: its row, its status and its custody entry."""
    c = attacker(ws)
    last = c.execute("SELECT max(seq) FROM custody").fetchone()[0]
    assert c.execute("SELECT event FROM custody WHERE seq = ?", (last,)).fetchone()[0] == "decision_reject"
    c.execute("DELETE FROM custody WHERE seq = ?", (last,))
    c.execute("DELETE FROM decisions WHERE violation_id = 2")
    c.execute("UPDATE violations SET status = 'pending' WHERE id = 2")
    c.close()
    failed(vaudit(ws, "verify"), f"custody log: truncated: it ends at entry {last - 1}", "1 entries are gone")


def test_replaced_clip_with_its_artifacts_row_updated_is_named(ws):
    c = attacker(ws)
    aid, path, old = c.execute("SELECT id, path, sha256 FROM artifacts WHERE kind = 'clip' AND violation_id = 1"
                               ).fetchone()
    other = c.execute("SELECT path FROM artifacts WHERE kind = 'clip' AND violation_id = 3").fetchone()[0]
    shutil.copyfile(ws.abs(other), ws.abs(path))  # another violation's real clip in its place
    new = vp.sha256_file(ws.abs(path))
    c.execute("UPDATE artifacts SET sha256 = ?, size = ? WHERE id = ?", (new, ws.abs(path).stat().st_size, aid))
    c.close()
    created = decision_entry(sqlite3.connect(ws.db_path), 1, "violation_created")
    failed(vaudit(ws, "verify"),
           f"artifact {aid} (clip {path}): kind/sha256 are clip/{new} in the table, but the custody log "
           f"(entry {created}) recorded clip/{old}",
           f"sha256 expected {old} (as custody entry {created} recorded it), found {new}")


def test_database_copied_without_its_wal_is_reported(ws, tmp_path):
    store = Store(ws.db_path)
    store.conn.execute("PRAGMA wal_autocheckpoint = 0")
    for vid in (1, 2, 3):
        store.record_decision(Decision(vid, "analyst1", "note", note="复核"))
    anchor.witness(ws, store, "review_batch")
    assert Path(f"{ws.db_path}-wal").stat().st_size > 0
    copy = Workspace(Path(shutil.copytree(ws.root, tmp_path / "copy",
                                          ignore=shutil.ignore_patterns("evidence.db-wal", "evidence.db-shm"))))
    store.close()
    failed(vaudit(copy, "verify"), "custody log: truncated", "without its evidence.db-wal")
    assert vaudit(ws, "verify").returncode == 0  # the original, with its WAL, is intact


def test_witness_rewritten_without_the_key_is_reported(ws):
    """The forger rewrites the log and then the witness to match, but cannot sign the new heads."""
    c = attacker(ws)
    c.execute("UPDATE violations SET status = 'rejected' WHERE id = 1")
    e = decision_entry(c, 1, "decision_confirm")
    c.execute("UPDATE custody SET payload = replace(payload, '\"confirmed\"', '\"rejected\"') WHERE seq = ?", (e,))
    rechain(c)
    seq, h = c.execute("SELECT seq, hash FROM custody ORDER BY seq DESC LIMIT 1").fetchone()
    c.close()
    lines = ws.witness.read_text().splitlines()
    forged = [json.loads(x) for x in lines]
    for rec in forged:  # unsigned heads that agree with the rewritten log
        rec.update(hash=h, seq=seq, signature=None, key=None, public_key=None)
    ws.witness.write_text("".join(json.dumps(r) + "\n" for r in forged))
    failed(vaudit(ws, "verify"), "the latest head is unsigned although the office has a signing key")
    ws.witness.unlink()
    failed(vaudit(ws, "verify"), "custody-witness.jsonl: missing")


def test_witness_resigned_with_a_replaced_key_fails_against_the_office_key(ws):
    """The forger swaps in their own key and re-signs every head; the key on paper catches it."""
    office = keys.load(ws.signing_key).public
    c = attacker(ws)
    c.execute("DELETE FROM custody WHERE seq = (SELECT max(seq) FROM custody)")
    c.execute("DELETE FROM decisions WHERE violation_id = 2")
    c.execute("UPDATE violations SET status = 'pending' WHERE id = 2")
    c.close()
    shutil.rmtree(ws.root / "keys")
    ws.witness.unlink()
    forger = keys.init(ws.signing_key)
    store = Store(ws.db_path)
    anchor.witness(ws, store, "run")
    store.close()
    assert vaudit(ws, "verify").returncode == 0  # against the workspace's own (replaced) key it looks fine...
    failed(vaudit(ws, "verify", "--public-key", office.text),  # ...not against the office's
           f"is key {forger.public.fingerprint}, not the office key {office.fingerprint}",
           f"signed by key {forger.public.fingerprint}, not the office key {office.fingerprint}")
    failed(vaudit(ws, "verify", "--fingerprint", office.fingerprint),
           f"is {forger.public.fingerprint}, which does not have the office key's fingerprint {office.fingerprint}")


def test_a_forged_witness_line_is_reported(ws):
    lines = ws.witness.read_text().splitlines()
    rec = json.loads(lines[-1])
    rec["seq"] -= 1  # claims an earlier head: the signature no longer covers it
    ws.witness.write_text("\n".join([*lines[:-1], json.dumps(rec)]) + "\n")
    failed(vaudit(ws, "verify"), "signature does not verify (the head was altered or forged)")


def test_a_pack_or_a_witness_copy_kept_elsewhere_also_anchors(ws, tmp_path):
    """Witness file and log rolled back together (the attacker had write access to both): a head kept
    outside the workspace, here a pack handed out earlier, still shows it."""
    cfg = config_mod.load()
    store = Store(ws.db_path)
    handed_out = pack(ws, store, cfg, parse_period("2026-11", cfg.tz), tmp_path / "pack")
    store.close()
    c = attacker(ws)
    c.execute("DELETE FROM custody WHERE seq > (SELECT max(seq) - 2 FROM custody)")  # export + last decision
    c.execute("DELETE FROM decisions WHERE violation_id = 2")
    c.execute("UPDATE violations SET status = 'pending' WHERE id = 2")
    c.close()
    kept = ws.witness.read_text().splitlines()
    ws.witness.write_text("\n".join(kept[:1]) + "\n")  # only the first head, from before the decision
    assert vaudit(ws, "verify").returncode == 0  # locally consistent again
    failed(vaudit(ws, "verify", "--witness", str(handed_out / "manifest.json")), "custody log: truncated")


# -- keys and heads through the CLI ---------------------------------------------------------------


def test_keys_init_show_and_custody_head(tmp_path):
    ws = Workspace(tmp_path / "fresh")
    r = vaudit(ws, "keys", "init")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ws.signing_key.stat().st_mode & 0o777 == 0o600
    assert ws.signing_key.parent.stat().st_mode & 0o777 == 0o700
    pub = keys.load(ws.signing_key).public
    shown = vaudit(ws, "keys", "show")
    assert pub.text in shown.stdout and pub.fingerprint in shown.stdout
    again = vaudit(ws, "keys", "init")
    assert again.returncode == 1 and "already exists" in again.stderr
    head = vaudit(ws, "custody", "head", "--json")
    rec = json.loads(head.stdout)
    seq, h = custody.head(sqlite3.connect(ws.db_path))
    assert (rec["seq"], rec["hash"], rec["key"]) == (seq, h, pub.fingerprint)
    assert pub.verify(base64.b64decode(rec["signature"]), anchor.head_message(rec))
    assert [json.loads(x)["event"] for x in ws.witness.read_text().splitlines()] == ["keys_init", "custody_head"]
    assert "custody head: entry" in vaudit(ws, "custody", "head").stdout
    os.chmod(ws.signing_key, 0o644)
    assert vaudit(ws, "custody", "head").returncode == 1  # a key others can read is refused, not used


def test_a_key_kept_elsewhere(tmp_path):
    ws = Workspace(tmp_path / "w")
    elsewhere = tmp_path / "usb" / "office.pem"
    assert vaudit(ws, "keys", "init", "--key", str(elsewhere)).returncode == 0
    assert elsewhere.is_file() and not ws.signing_key.exists()
    rec = json.loads(vaudit(ws, "custody", "head", "--json", "--key", str(elsewhere)).stdout)
    assert rec["key"] == keys.load(elsewhere).public.fingerprint
    env = {**os.environ, keys.KEY_ENV: str(elsewhere)}
    r = subprocess.run([sys.executable, "-m", "pipeline.cli", "--workspace", str(ws.root), "verify"],
                       capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    assert r.returncode == 0, r.stdout


def test_a_workspace_without_a_key_keeps_working_and_says_unsigned(tmp_path):
    ws, store = build_workspace(tmp_path, [Known("城关镇", "garbage", datetime(2026, 11, 3, 9, tzinfo=TZ))])
    r = vaudit(ws, "verify")
    assert r.returncode == 0 and "no witness file" in r.stdout
    assert anchor.witness_quietly(ws, store, "run")["signature"] is None
    r = vaudit(ws, "verify")
    assert r.returncode == 0 and "1 of 1 heads unsigned" in r.stdout
    store.record_decision(Decision(1, "ana", "confirm"))
    anchor.witness_quietly(ws, store, "review")
    store.close()
    c = attacker(ws)  # even unsigned, the witness shows a cut-off log
    c.execute("DELETE FROM custody WHERE seq = (SELECT max(seq) FROM custody)")
    c.execute("DELETE FROM decisions")
    c.execute("UPDATE violations SET status = 'pending'")
    c.close()
    failed(vaudit(ws, "verify"), "custody log: truncated")


# -- signed packs -------------------------------------------------------------------------------


def run_pack_verifier(pack_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """The pack's own script in a bare, isolated interpreter: no vaudit, no cryptography needed."""
    return subprocess.run([sys.executable, "-I", str(pack_dir / "verify_pack.py"), *args],
                          check=False, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def signed_pack(base, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("signed")
    w = Workspace(Path(shutil.copytree(base.root, tmp / "ws")))
    cfg = config_mod.load()
    store = Store(w.db_path)
    out = pack(w, store, cfg, parse_period("2026-11", cfg.tz), tmp / "pack", actor="assessor1")
    store.close()
    return w, out, keys.load(w.signing_key).public


def test_signed_pack_verifies_against_the_office_key(signed_pack):
    w, out, office = signed_pack
    for args in (["--fingerprint", office.fingerprint], ["--public-key", office.text]):
        r = run_pack_verifier(out, *args)
        assert r.returncode == 0 and f"signed by the office key {office.fingerprint}" in r.stdout, r.stdout
    plain = run_pack_verifier(out)
    assert plain.returncode == 0 and "NOT AUTHENTICATED" in plain.stdout
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    head = manifest["database"]["custody_head"]
    assert head["key"] == office.fingerprint and office.verify(base64.b64decode(head["signature"]),
                                                               anchor.head_message(head))
    # the export itself was witnessed: the workspace verifies, and the pack's head anchors it too
    assert json.loads(w.witness.read_text().splitlines()[-1])["event"] == "export_pack"
    assert vaudit(w, "verify", "--witness", str(out / "manifest.json")).returncode == 0


def forge(out: Path, dest: Path) -> Path:
    """Swap a clip for another violation's, rename the confirming user, edit index.html, recompute the manifest."""
    f = Path(shutil.copytree(out, dest))
    clips = sorted((f / "media").rglob("clip.*"))
    shutil.copyfile(clips[1], clips[0])
    excerpt_path = f / "custody" / "1.json"
    excerpt = json.loads(excerpt_path.read_text(encoding="utf-8"))
    for d in excerpt["decisions"]:
        d["user"] = "director"
    excerpt_path.write_text(json.dumps(excerpt, ensure_ascii=False, indent=2), encoding="utf-8")
    index = f / "index.html"
    index.write_text(index.read_text(encoding="utf-8").replace("城关镇", "东城街道"), encoding="utf-8")
    manifest = json.loads((f / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        p = f / entry["path"]
        entry["sha256"], entry["size"] = vp.sha256_file(p), p.stat().st_size
        if entry["path"] == clips[0].relative_to(f).as_posix():  # claims the swapped-in clip is the original
            entry["original_sha256"] = entry["sha256"]
    (f / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return f


def test_forged_pack_with_recomputed_manifest_fails_naming_what(signed_pack, tmp_path):
    _, out, office = signed_pack
    forged = forge(out, tmp_path / "forged")
    r = run_pack_verifier(forged, "--fingerprint", office.fingerprint)
    assert r.returncode == 1 and "manifest.json: the signature does not verify" in r.stdout, r.stdout
    # the swapped clip is also not the one violation 1's custody entry recorded
    assert "media/1/clip" in r.stdout and "is not in violation 1's custody record" in r.stdout

    # re-signed with the forger's own key: the fingerprint from the paperwork rules it out
    forger = keys.init(tmp_path / "forger" / "k.pem")
    sig = sign_manifest(forged / "manifest.json", forger)
    (forged / "manifest.sig").write_text(json.dumps(sig), encoding="utf-8")
    r = run_pack_verifier(forged, "--fingerprint", office.fingerprint)
    assert r.returncode == 1 and f"signed by key {forger.public.fingerprint}, not the office key" in r.stdout
    r = run_pack_verifier(forged, "--public-key", office.text)
    assert r.returncode == 1 and "not the office key" in r.stdout

    # the signature removed: an unsigned pack is refused once the office key is given
    (forged / "manifest.sig").unlink()
    r = run_pack_verifier(forged, "--public-key", office.text)
    assert r.returncode == 1 and "manifest.sig: missing" in r.stdout


def test_renamed_user_alone_is_caught_by_the_signature(signed_pack, tmp_path):
    _, out, office = signed_pack
    f = Path(shutil.copytree(out, tmp_path / "renamed"))
    p = f / "custody" / "3.json"
    p.write_text(p.read_text(encoding="utf-8").replace("analyst2", "analyst9"), encoding="utf-8")
    manifest = json.loads((f / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        if entry["path"] == "custody/3.json":
            entry["sha256"], entry["size"] = vp.sha256_file(p), p.stat().st_size
    (f / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    r = run_pack_verifier(f, "--fingerprint", office.fingerprint)
    assert r.returncode == 1 and "signature does not verify" in r.stdout, r.stdout


def test_stdlib_ed25519_agrees_with_cryptography(tmp_path):
    k = keys.init(tmp_path / "k.pem")
    for i in range(8):
        msg = os.urandom(i * 13)
        sig = k.sign(msg)
        assert vp.ed25519_verify(k.public.raw, msg, sig)
        bad = bytearray(sig)
        bad[(i * 9) % 64] ^= 1 << (i % 8)
        assert not vp.ed25519_verify(k.public.raw, msg, bytes(bad))
        assert not vp.ed25519_verify(k.public.raw, msg + b".", sig)
    # RFC 8032 section 7.1, test 1
    pub = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    sig = bytes.fromhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3970"
                        "1cf9b46bd25bf5f0595bbe24655141438e7a100b")
    assert vp.ed25519_verify(pub, b"", sig) and not vp.ed25519_verify(pub, b"\x00", sig)


# -- the review app witnesses its decisions ----------------------------------------------------------


def test_review_decisions_and_batches_are_witnessed_signed(ws):
    import re
    import warnings

    from pipeline.review import commands
    from pipeline.review.app import create_app

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
        from starlette.testclient import TestClient

    commands.user_add(ws, "ana", "analyst", "correct-horse-9")
    client = TestClient(create_app(ws, config_mod.load()))

    def csrf(html: str) -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)

    r = client.post("/login", data={"name": "ana", "password": "correct-horse-9",
                                    "csrf_token": csrf(client.get("/login").text), "next": "/"},
                    follow_redirects=False)
    assert r.status_code == 303
    token = csrf(client.get("/").text)
    before = len(ws.witness.read_text().splitlines())
    assert client.post("/v/2/decide", data={"csrf_token": token, "action": "note", "note": "复核"},
                       follow_redirects=False).status_code == 303
    assert client.post("/batch", data={"csrf_token": token, "action": "confirm", "ids": ["1", "3"]},
                       follow_redirects=False).status_code == 303
    heads = [json.loads(x) for x in ws.witness.read_text().splitlines()[before:]]
    assert [h["event"] for h in heads] == ["review", "review_batch"]
    office = keys.load(ws.signing_key).public
    assert all(office.verify(base64.b64decode(h["signature"]), anchor.head_message(h)) for h in heads)
    with sqlite3.connect(ws.db_path) as c:
        assert heads[-1]["seq"] == custody.head(c)[0]
    assert vaudit(ws, "verify").returncode == 0
