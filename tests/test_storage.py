"""The store on SQLite and PostgreSQL: migrations, atomic writes, idempotent feedback."""

from __future__ import annotations

import os
import stat
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

from fhir_client.pseudonym import load_or_create_key, patient_key
from hooks.cards import Card, Source, Suggestion
from hooks.feedback import FeedbackItem
from storage.db import create_db_engine
from storage.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    upgrade_database,
)
from storage.repository import IssuedCardInput, Store
from storage.tables import Invocation


def _invocation(**overrides) -> Invocation:
    values = {
        "hook_instance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "service_id": "lhs-order-sign",
        "hook": "order-sign",
        "patient_key": "k" * 64,
        "status_code": 200,
        "received_at": datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
    }
    return Invocation(**(values | overrides))


def _card(summary="Stop metformin") -> Card:
    return Card(
        summary=summary,
        indicator="critical",
        source=Source(label="FDA 2016"),
        suggestions=[Suggestion(label="Cancel the order")],
        selectionBehavior="at-most-one",
    )


def _feedback(card_uuid: str, **overrides) -> tuple[FeedbackItem, dict]:
    raw = {
        "card": card_uuid,
        "outcome": "overridden",
        "outcomeTimestamp": datetime.now(UTC).isoformat(),
    } | overrides
    return FeedbackItem.model_validate(raw), raw


def test_migrations_match_the_models_and_are_idempotent(database_url):
    upgrade_database(database_url)
    upgrade_database(database_url)
    assert current_revision(database_url) == head_revision() == "0014"
    engine = create_db_engine(database_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert differences == []


def test_sqlite_runs_in_wal_mode(tmp_path):
    url = f"sqlite:///{tmp_path / 'wal.db'}"
    upgrade_database(url)
    with create_db_engine(url).connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_invocation_and_cards_are_stored_together(store):
    card = _card()
    invocation_id = store.record_invocation(
        _invocation(card_count=1), [IssuedCardInput(card, "rule-a", "1.0.0")]
    )
    (stored,) = store.cards_for_invocation(invocation_id)
    assert (stored.uuid, stored.rule_id, stored.rule_version) == (card.uuid, "rule-a", "1.0.0")
    assert stored.suggestion_uuids == [card.suggestions[0].uuid]
    assert stored.card["summary"] == "Stop metformin"
    assert store.invocations()[0].received_at == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_a_failing_card_rolls_back_its_invocation(store):
    card = _card()
    store.record_invocation(_invocation(), [IssuedCardInput(card, "rule-a", "1.0.0")])
    # The same card uuid again violates the primary key: nothing of the second call remains.
    with pytest.raises(Exception):  # noqa: B017 (IntegrityError's class differs by driver)
        store.record_invocation(
            _invocation(hook_instance="other"), [IssuedCardInput(card, "rule-a", "1.0.0")]
        )
    assert store.counts() == {"invocation": 1, "issued_card": 1, "feedback": 0}


def test_feedback_is_idempotent_and_linked(store):
    card = _card()
    store.record_invocation(_invocation(), [IssuedCardInput(card, "rule-a", "1.0.0")])
    item, raw = _feedback(card.uuid)
    first = store.record_feedback("", "lhs-order-sign", [item], [raw])
    again = store.record_feedback("", "lhs-order-sign", [item, item], [raw, dict(raw)])
    assert (first.stored, first.duplicates, first.unknown_cards) == (1, 0, [])
    assert (again.stored, again.duplicates) == (0, 2)
    (record,) = store.feedback_for_card(card.uuid)
    assert record.issued_card_uuid == card.uuid
    assert record.outcome_timestamp == item.outcomeTimestamp


def test_overrides_are_kept_by_patient_and_rule_and_rebuilt_by_the_migration(database_url):
    upgrade_database(database_url)
    engine = create_db_engine(database_url)
    store = Store(engine)
    overridden, accepted = _card("Stop metformin"), _card("Stop simvastatin")
    store.record_invocation(
        _invocation(),
        [
            IssuedCardInput(overridden, "rule-a", "1.0.0", fingerprint="f-a"),
            IssuedCardInput(accepted, "rule-b", "1.0.0", fingerprint="f-b"),
        ],
    )
    items = [
        _feedback(overridden.uuid),
        _feedback(
            accepted.uuid,
            outcome="accepted",
            acceptedSuggestions=[{"id": accepted.suggestions[0].uuid}],
        ),
        _feedback("never-issued"),
    ]
    store.record_feedback("", "lhs-order-sign", [i for i, _ in items], [r for _, r in items])
    when = items[0][0].outcomeTimestamp
    since = when - timedelta(days=1)
    expected = {("rule-a", "f-a", when)}
    assert store.overridden_since("", "k" * 64, ["rule-a", "rule-b"], since) == expected
    # Another client's clinicians never overrode it: its repeats are not suppressed.
    assert store.overridden_since("https://other-ehr", "k" * 64, ["rule-a"], since) == set()
    assert store.overridden_since("", "k" * 64, ["rule-a"], when + timedelta(seconds=1)) == set()
    assert store.overridden_since("", "other" * 8, ["rule-a"], since) == set()
    # Databases migrated from before the table existed get it filled from their feedback.
    engine.dispose()
    command.downgrade(alembic_config(database_url), "0009")
    upgrade_database(database_url)
    engine = create_db_engine(database_url)
    assert Store(engine).overridden_since("", "k" * 64, ["rule-a", "rule-b"], since) == expected
    engine.dispose()


def _issued(store: Store, count: int = 1, owner: str = "") -> list[str]:
    """Uuids of cards issued (to ``owner``) by one lhs-order-sign call."""
    cards = [_card(f"card {n}") for n in range(count)]
    store.record_invocation(
        _invocation(hook_instance=str(uuid.uuid4()), owner=owner),
        [IssuedCardInput(card, "rule-a", "1.0.0") for card in cards],
    )
    return [card.uuid for card in cards]


def test_feedback_on_cards_not_shown_to_the_sender_is_not_stored(store):
    (theirs,) = _issued(store, owner="https://other-ehr.example")
    items = [_feedback("never-issued"), _feedback(theirs)]
    outcome = store.record_feedback(
        "", "lhs-order-sign", [i for i, _ in items], [r for _, r in items]
    )
    assert (outcome.stored, outcome.duplicates) == (0, 0)
    assert outcome.unknown_cards == sorted(["never-issued", theirs])
    assert store.counts()["feedback"] == 0
    item, raw = items[1]
    owner = "https://other-ehr.example"
    elsewhere = store.record_feedback(owner, "lhs-patient-view", [item], [raw])
    assert elsewhere.unknown_cards == [theirs]  # shown by another service
    assert store.record_feedback(owner, "lhs-order-sign", [item], [raw]).stored == 1


def test_distinct_feedback_on_one_card_is_all_kept(store):
    (card,) = _issued(store)
    first = _feedback(card)
    later = _feedback(card, outcomeTimestamp=(datetime.now(UTC) + timedelta(seconds=1)).isoformat())
    store.record_feedback("", "lhs-order-sign", [first[0], later[0]], [first[1], later[1]])
    assert len(store.feedback_for_card(card)) == 2


def test_timestamps_round_trip_as_utc(store):
    (card,) = _issued(store)
    # A minute after the card was issued, as a clock two hours east of UTC writes it.
    east = datetime.now(timezone(timedelta(hours=2))).replace(microsecond=0) + timedelta(minutes=1)
    item, raw = _feedback(card, outcomeTimestamp=east.isoformat())
    store.record_feedback("", "lhs-order-sign", [item], [raw])
    (record,) = store.feedback_for_card(card)
    assert record.outcome_timestamp == east.astimezone(UTC)
    assert record.outcome_timestamp.utcoffset() == timedelta(0)


def test_concurrent_writers_lose_nothing(store):
    errors: list[BaseException] = []
    cards = _issued(store, 100)

    def write(worker: int) -> None:
        try:
            for n in range(25):
                item, raw = _feedback(cards[worker * 25 + n])
                store.record_feedback("", "lhs-order-sign", [item], [raw])
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.counts()["feedback"] == 100


def test_the_sqlite_database_is_readable_by_its_owner_only(tmp_path):
    url = f"sqlite:///{tmp_path / 'data' / 'lhs.db'}"
    upgrade_database(url)
    for name in ("lhs.db", "lhs.db-wal", "lhs.db-shm"):
        path = tmp_path / "data" / name
        if path.exists():  # WAL files exist while a connection is open
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    assert stat.S_IMODE((tmp_path / "data" / "lhs.db").stat().st_mode) == 0o600


def test_pseudonyms_are_keyed_and_stable(tmp_path):
    key = load_or_create_key(tmp_path / "keys" / "pseudonym.key")
    assert len(key) == 32
    assert stat.S_IMODE(os.stat(tmp_path / "keys" / "pseudonym.key").st_mode) == 0o600
    assert load_or_create_key(tmp_path / "keys" / "pseudonym.key") == key
    # An id that hex digits cannot spell: a random digest may well contain "123".
    same = patient_key(key, "https://ehr.example/fhir", "patient-123")
    assert same == patient_key(key, "https://ehr.example/fhir", "patient-123")
    assert same != patient_key(key, "https://other.example/fhir", "patient-123")
    assert same != patient_key(b"another key", "https://ehr.example/fhir", "patient-123")
    assert "patient" not in same and len(same) == 64
    assert set(same) <= set("0123456789abcdef")


DISCHARGE = datetime(2021, 3, 1, 12, tzinfo=UTC)


def test_predictions_are_stored_with_their_call_and_survive_the_spool(store, tmp_path):
    from storage.repository import PredictionInput
    from storage.spool import Spool

    card = _card("Readmission risk 23%")
    prediction = PredictionInput(
        "lhs-readmission-30d",
        "3",
        0.23,
        0.14,
        {"age_years": 81.0, "ed_visits_6m": 2.0},
        {"age_years": 0.4, "ed_visits_6m": 0.7},
        DISCHARGE,
        30,
        card.uuid,
    )
    store.record_invocation(
        _invocation(hook="encounter-discharge"),
        [IssuedCardInput(card, "lhs-readmission-30d", "3")],
        [prediction],
    )
    # The database was down for the next call: spooled with its prediction, replayed later.
    spool = Spool(tmp_path / "spool")
    spool.spool_invocation(
        _invocation(hook_instance="spooled", hook="encounter-discharge"),
        [],
        [
            PredictionInput(
                "lhs-readmission-30d",
                "3",
                0.05,
                0.14,
                {"age_years": 40.0},
                {"age_years": -0.2},
                DISCHARGE + timedelta(days=1),
                30,
            )
        ],
    )
    assert spool.drain(store) == 1
    stored = store.predictions("lhs-readmission-30d")
    assert [(p.risk, p.card_uuid) for p in stored] == [(0.05, None), (0.23, card.uuid)]
    assert stored[1].features == {"age_years": 81.0, "ed_visits_6m": 2.0}
    assert stored[1].contributions["ed_visits_6m"] == 0.7
    assert stored[0].patient_key == "k" * 64 and stored[1].model_version == "3"
    assert stored[0].prediction_time == DISCHARGE + timedelta(days=1)
    assert stored[1].label is None  # the outcome window is still open


def test_experiment_assignments_are_stored_with_the_call_and_survive_the_spool(store, tmp_path):
    from storage.repository import AssignmentInput
    from storage.spool import Spool

    shown, withheld = _card("LACE 15"), _card("LACE 12")
    store.record_invocation(
        _invocation(hook="encounter-discharge"),
        [IssuedCardInput(shown, "lace-readmission-risk", "1.1.0")],
        assignments=[
            AssignmentInput(
                "exp", "current", shown, "lace-readmission-risk", "1.1.0", True, DISCHARGE
            )
        ],
    )
    spool = Spool(tmp_path / "spool")
    spool.spool_invocation(
        _invocation(hook_instance="spooled", hook="encounter-discharge"),
        [],
        [],
        [
            AssignmentInput(
                "exp", "holdout", withheld, "lace-readmission-risk", "1.1.0", False, DISCHARGE
            )
        ],
    )
    assert spool.drain(store) == 1
    rows = store.assignments("exp")
    assert [(r.arm, r.shown, r.card_uuid) for r in rows] == [
        ("current", True, shown.uuid),
        ("holdout", False, withheld.uuid),
    ]
    assert rows[1].index_time == DISCHARGE and rows[1].card["summary"] == "LACE 12"


def test_shadow_comparisons_are_stored_with_the_call_and_survive_the_spool(store, tmp_path):
    from storage.repository import ShadowInput
    from storage.spool import Spool

    both = ShadowInput(
        "lace-12",
        "1.1.0",
        "1.2.0",
        "both",
        True,
        [{"indicator": "warning", "summary": "LACE 15"}],
        [_card("LACE 15 (new wording)").model_dump(mode="json", exclude_none=True)],
    )
    store.record_invocation(_invocation(hook="encounter-discharge"), [], shadows=[both])
    spool = Spool(tmp_path / "spool")
    missed = ShadowInput(
        "lace-12",
        "1.1.0",
        "1.2.0",
        "missed",
        False,
        [{"indicator": "warning", "summary": "LACE 10"}],
        [],
    )
    spool.spool_invocation(
        _invocation(hook_instance="spooled", hook="encounter-discharge"), [], [], [], [missed]
    )
    assert spool.drain(store) == 1
    rows = store.shadow_comparisons("lace-12")
    assert [(r.agreement, r.changed, r.patient_key) for r in rows] == [
        ("both", True, "k" * 64),
        ("missed", False, "k" * 64),
    ]
    assert rows[0].shadow[0]["summary"] == "LACE 15 (new wording)"
    assert rows[1].live == [{"indicator": "warning", "summary": "LACE 10"}]


def test_a_call_counts_as_acted_on_when_any_of_its_cards_was_accepted(store):
    """Retraining leaves out patients treated through any card of the call (the LACE rule's
    follow-up as much as the model's own card)."""
    from learning.retraining import OTHER_CARD_ACCEPTED, served_examples
    from models.tasks import READMISSION_30D
    from storage.repository import PredictionInput

    features = {
        "length_of_stay_days": 5.0,
        "acute_admission": 1.0,
        "charlson_index": 2.0,
        "ed_visits_6m": 1.0,
        "male": 1.0,
        "age_years": 70.0,
    }
    ids = []
    for n, accepted in enumerate((True, False)):
        lace = _card("LACE 15")
        ids.append(
            store.record_invocation(
                _invocation(
                    hook_instance=f"call-{n}",
                    service_id="lhs-encounter-discharge",
                    hook="encounter-discharge",
                ),
                [IssuedCardInput(lace, "lace-readmission-risk", "1.1.0")],
                [
                    PredictionInput(
                        "lhs-readmission-30d",
                        "1",
                        0.05,
                        0.12,
                        features,
                        {},
                        DISCHARGE,
                        30,
                        sex="other" if accepted else None,
                        race="Asian" if accepted else None,
                    )
                ],
            )
        )
        overrides = {
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": lace.suggestions[0].uuid}],
        }
        item, raw = _feedback(lace.uuid, **(overrides if accepted else {}))
        store.record_feedback("", "lhs-encounter-discharge", [item], [raw])
    assert store.accepted_invocations(ids) == {ids[0]}
    store.set_labels({p.id: 0 for p in store.predictions("lhs-readmission-30d")})
    examples = served_examples(store, READMISSION_30D)
    assert sorted(e.feedback for e in examples) == sorted([OTHER_CARD_ACCEPTED, "no card"])
    # The race recorded for the audit reaches the gate's subgroup checks; a prediction
    # stored without it is "not recorded", as in the reports.
    race = {e.feedback: e.race for e in examples}
    assert race == {OTHER_CARD_ACCEPTED: "Asian", "no card": "not recorded"}
    # So does the sex recorded (which the model's 'male' feature cannot say); without it,
    # the feature.
    sex = {e.feedback: e.sex for e in examples}
    assert sex == {OTHER_CARD_ACCEPTED: "other", "no card": "male"}
