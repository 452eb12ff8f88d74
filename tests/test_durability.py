"""No acknowledged write is lost: database outages, locks, and processes killed mid-write."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import UTC, date, datetime

from fastapi.testclient import TestClient
from sqlalchemy import text

from point_of_care.examples import EXAMPLES
from storage.migrate import upgrade_database
from tests.service_app import app_factory
from tests.tcp_proxy import TcpProxy
from tests.waiting import wait_for


def _batch(cards: list[str]) -> dict:
    return {
        "feedback": [
            {
                "card": card,
                "outcome": "overridden",
                "outcomeTimestamp": datetime.now(UTC).isoformat(),
            }
            for card in cards
        ]
    }


def _issue(client: TestClient) -> list[str]:
    call = client.post(
        "/cds-services/lhs-order-sign", json=EXAMPLES["lhs-order-sign"](date.today())
    )
    assert call.status_code == 200  # the clinician is answered during an outage too
    return [card["uuid"] for card in call.json()["cards"]]


def test_postgres_killed_mid_stream_loses_no_feedback(postgres_url, tmp_path):
    upgrade_database(postgres_url)
    proxy = TcpProxy("127.0.0.1", 5432)
    proxy.start()
    through_proxy = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    app = app_factory(tmp_path)(database_url=through_proxy, spool_drain_interval=0.2)
    statuses = []
    cards = []
    with TestClient(app) as client:
        for n in range(30):
            if n == 10:
                proxy.stop()  # the database disappears mid-stream
            if n == 20:
                proxy.start()
            shown = _issue(client)
            response = client.post("/cds-services/lhs-order-sign/feedback", json=_batch(shown))
            statuses.append(response.status_code)
            cards.extend(shown)
        assert set(statuses) <= {200, 202}
        assert 202 in statuses[10:20]
        store = app.state.lhs.store
        wait_for(
            lambda: store.counts()["feedback"] == len(cards) and app.state.lhs.spool.pending() == 0,
            timeout=15,
        )
        assert store.counts()["issued_card"] == len(cards)
    proxy.stop()


def test_sqlite_locked_spools_and_replays(tmp_path):
    app = app_factory(tmp_path)(sqlite_busy_timeout_ms=50, spool_drain_interval=0.2)
    database = tmp_path / "lhs.db"
    with TestClient(app) as client:
        shown = [_issue(client) for _ in range(4)]
        blocker = sqlite3.connect(database, timeout=0)
        blocker.execute("BEGIN EXCLUSIVE")
        locked = [
            client.post("/cds-services/lhs-order-sign/feedback", json=_batch(cards))
            for cards in shown
        ]
        assert [r.status_code for r in locked] == [202] * 4
        assert [r.json()["spooled"] for r in locked] == [len(cards) for cards in shown]
        blocker.rollback()
        blocker.close()
        total = sum(len(cards) for cards in shown)
        wait_for(lambda: app.state.lhs.store.counts()["feedback"] == total, timeout=15)
        assert app.state.lhs.spool.pending() == 0


WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from hooks.cards import Card, Source
    from hooks.feedback import FeedbackItem
    from storage.db import create_db_engine
    from storage.repository import IssuedCardInput, Store
    from storage.tables import Invocation

    store = Store(create_db_engine(sys.argv[1]))
    n = 0
    while True:
        cards = [Card(uuid=f"{sys.argv[2]}-{n}-{i}", summary="s", indicator="info",
                      source=Source(label="x")) for i in range(3)]
        store.record_invocation(
            Invocation(hook_instance=f"{sys.argv[2]}-{n}", service_id="lhs-order-sign",
                       hook="order-sign", patient_key="k" * 64, status_code=200,
                       received_at=datetime.now(UTC)),
            [IssuedCardInput(card, "rule-a", "1.0.0") for card in cards],
        )
        raw = [{"card": card.uuid, "outcome": "accepted", "acceptedSuggestions": [{"id": "s"}],
                "outcomeTimestamp": datetime.now(UTC).isoformat()} for card in cards]
        store.record_feedback("", "lhs-order-sign", [FeedbackItem.model_validate(r) for r in raw], raw)
        print(n, flush=True)  # printed only after the transaction committed
        n += 1
    """
)


def _kill_writer_mid_stream(url: str) -> tuple[int, str]:
    run = uuid.uuid4().hex[:8]
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, run], stdout=subprocess.PIPE, text=True
    )
    committed = -1
    deadline = time.monotonic() + 30
    while committed < 40 and time.monotonic() < deadline:
        committed = int(writer.stdout.readline())
    writer.send_signal(signal.SIGKILL)
    rest = writer.stdout.read().split()
    writer.wait()
    return (int(rest[-1]) if rest else committed), run


def test_killed_writer_loses_no_committed_feedback_and_leaves_no_half_rows(database_url):
    upgrade_database(database_url)
    last_committed, run = _kill_writer_mid_stream(database_url)
    assert last_committed >= 40
    from storage.db import create_db_engine

    engine = create_db_engine(database_url)
    with engine.connect() as connection:
        cards = connection.execute(text("SELECT card_uuid FROM feedback")).scalars().all()
        if engine.dialect.name == "sqlite":
            assert connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    engine.dispose()
    batches = {}
    for card in cards:
        _, n, _ = card.rsplit("-", 2)
        batches[int(n)] = batches.get(int(n), 0) + 1
    # Every batch acknowledged before the kill is there, and no batch is there in part.
    assert all(n in batches for n in range(last_committed + 1))
    assert set(batches.values()) == {3}
    assert all(card.startswith(run) for card in cards)


def test_feedback_on_a_card_still_in_the_spool_waits_behind_it(tmp_path):
    # The drain runs at start-up only in this test: the spool is replayed by hand below.
    app = app_factory(tmp_path)(sqlite_busy_timeout_ms=50, spool_drain_interval=3600)
    with TestClient(app) as client:
        blocker = sqlite3.connect(tmp_path / "lhs.db", timeout=0)
        blocker.execute("BEGIN EXCLUSIVE")
        shown = _issue(client)  # answered; the call and its cards wait in the spool
        blocker.rollback()
        blocker.close()
        response = client.post("/cds-services/lhs-order-sign/feedback", json=_batch(shown))
        assert response.status_code == 202
        assert response.json() == {
            "stored": 0,
            "duplicates": 0,
            "spooled": len(shown),
            "unknownCards": [],
            "adjustedTimestamps": [],
        }
        store = app.state.lhs.store
        app.state.lhs.spool.drain(store)
        assert store.counts()["feedback"] == len(shown)
        assert {f.issued_card_uuid for c in shown for f in store.feedback_for_card(c)} == set(shown)
