import sqlite3

import psycopg
import pytest
from conftest import ENGINES, database_for

from pipeline import custody, db
from pipeline.store import Store


@pytest.fixture(params=ENGINES)
def store(tmp_path, request):
    s = Store(database_for(request.param, request) or tmp_path / "evidence.db")
    for i in range(5):
        with s.tx() as c:
            custody.append(c, "test_event", "thing", i, {"n": i, "名": "城关镇"})
    yield s
    s.close()


def raw(store):
    """An attacker's connection: triggers dropped so raw SQL can rewrite the log."""
    if store.url:
        c = psycopg.connect(store.url, autocommit=True)
        c.execute("DROP TRIGGER custody_no_update ON custody")
        c.execute("DROP TRIGGER custody_no_delete ON custody")
        return c
    c = sqlite3.connect(store.path, isolation_level=None)
    c.execute("DROP TRIGGER custody_no_update")
    c.execute("DROP TRIGGER custody_no_delete")
    return c


def test_untouched_chain_verifies(store):
    assert custody.verify(store.conn) == []
    assert store.query("SELECT count(*) n FROM custody")[0]["n"] == 7  # two migration entries (v1, v2) + 5


def test_append_outside_transaction_is_refused(store):
    with pytest.raises(RuntimeError):
        custody.append(store.conn, "x", "y", 1, {})


def test_log_is_append_only_through_sql(store):
    with pytest.raises(db.IntegrityError, match="append-only"):
        store.conn.execute("UPDATE custody SET actor = 'mallory' WHERE seq = 3")
    with pytest.raises(db.IntegrityError, match="append-only"):
        store.conn.execute("DELETE FROM custody WHERE seq = 3")


def test_edit_is_found_at_the_edited_entry(store):
    raw(store).execute("UPDATE custody SET payload = '{\"n\":99}' WHERE seq = 4")
    problems = custody.verify(store.conn)
    assert [p.seq for p in problems] == [4]
    assert "content altered" in str(problems[0])


def test_delete_is_found_at_the_next_entry(store):
    raw(store).execute("DELETE FROM custody WHERE seq = 3")
    problems = custody.verify(store.conn)
    assert problems[0].seq == 4
    assert "expected entry 3" in str(problems[0])


def test_reorder_is_found(store):
    c = raw(store)
    c.execute("UPDATE custody SET seq = -2 WHERE seq = 2")
    c.execute("UPDATE custody SET seq = 2 WHERE seq = 5")
    c.execute("UPDATE custody SET seq = 5 WHERE seq = -2")
    problems = custody.verify(store.conn)
    assert problems and problems[0].seq in (2, 5)
