"""Rooms in the catalogue database (`streaming/room_store.py`, migration 0002) on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import inspect, select, text

from assets.catalog_db import current_revision, downgrade, head_revision, migrate
from streaming import room_store as store
from streaming.room_models import Room, RoomEvent, RoomMember
from streaming.room_state import apply, from_json, join_event, new_room, to_json, view
from tests.catalog_fixtures import catalog, catalog_url, settings  # noqa: F401 (fixtures)

ROOM_TABLES = {"rooms", "room_members", "room_events"}
LATER = dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc)


def make_room(db, room_id="room1", host=("m-ann", "Ann", "hash-ann")):
    state = new_room(room_id, "Friday fits", [3, 5], 8, host[0], host[1])
    row = store.create_room(db, room_id, "Friday fits", [3, 5], 8, store.hash_token("invite"), LATER,
                            to_json(state), host)
    return row, state


def event(seq, kind="chat", member="m-ann", **fields):
    return {"type": kind, "member": member, "seq": seq, "room_id": "room1", "at": 1_700_000_000_000 + seq, **fields}


def test_migration_0002_makes_the_room_tables_and_goes_back(catalog):
    assert current_revision(catalog.engine) == head_revision() == "0002"
    assert ROOM_TABLES <= set(inspect(catalog.engine).get_table_names())
    downgrade(catalog.engine, "0001")
    tables = set(inspect(catalog.engine).get_table_names())
    assert not ROOM_TABLES & tables and {"brands", "products"} <= tables
    assert current_revision(catalog.engine) == "0001"
    migrate(catalog.engine)
    assert ROOM_TABLES <= set(inspect(catalog.engine).get_table_names())
    make_room(catalog)  # usable again


def test_the_room_models_match_the_migration(catalog):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from assets.catalog_models import Base

    assert ROOM_TABLES <= set(Base.metadata.tables)
    with catalog.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_create_a_room_with_its_host_and_find_members_by_token_hash(catalog):
    row, _ = make_room(catalog)
    assert row.id == "room1" and row.product_ids == [3, 5] and row.max_members == 8 and row.snapshot_seq == 0
    assert row.invite_hash == store.hash_token("invite") and len(row.invite_hash) == 64
    got = store.get_room(catalog, "room1")
    assert got.invite_expires_at == LATER and got.created_at.tzinfo is not None and got.ended_at is None
    assert store.get_room(catalog, "nope") is None
    host = store.member_by_token(catalog, "room1", "hash-ann")
    assert host.id == "m-ann" and host.name == "Ann" and host.left_at is None
    store.add_member(catalog, "room1", "m-bo", "Bo", "hash-bo")
    assert store.member_by_token(catalog, "room1", "hash-bo").id == "m-bo"
    assert store.member_by_token(catalog, "other-room", "hash-bo") is None  # a token opens its own room only
    assert store.member_by_token(catalog, "room1", "hash-nobody") is None
    store.mark_left(catalog, "room1", "m-bo")
    assert store.member_by_token(catalog, "room1", "hash-bo").left_at is not None


def test_token_hashes_are_unique(catalog):
    from sqlalchemy.exc import IntegrityError

    make_room(catalog)
    with pytest.raises(IntegrityError):
        store.add_member(catalog, "room1", "m-eve", "Eve", "hash-ann")


def test_events_and_snapshot_in_one_transaction_and_the_snapshot_only_moves_forward(catalog):
    _, state = make_room(catalog)
    events = [{**join_event(state, "m-ann", "Ann"), "seq": 1, "room_id": "room1", "at": 1_700_000_000_001}]
    events += [event(seq, text=f"hello {seq}") for seq in range(2, 6)]
    for e in events:
        apply(state, e)
    store.append_events(catalog, "room1", events[:3], to_json(state), 5)
    store.append_events(catalog, "room1", events[3:])
    assert [e["seq"] for e in store.events_since(catalog, "room1", 0)] == [1, 2, 3, 4, 5]
    assert [e["text"] for e in store.events_since(catalog, "room1", 3)] == ["hello 4", "hello 5"]
    assert [e["seq"] for e in store.events_since(catalog, "room1", 1, until=3)] == [2, 3]
    assert store.events_since(catalog, "room1", 1, limit=2)[-1]["seq"] == 3
    assert store.last_seq(catalog, "room1") == 5
    old = new_room("room1", "Friday fits", [3, 5], 8, "m-ann", "Ann")
    store.append_events(catalog, "room1", [], to_json(old), 2)  # older than the stored one: ignored
    loaded = store.load_room(catalog, "room1")
    assert loaded.row.snapshot_seq == 5 and loaded.events == []
    assert from_json(loaded.snapshot) == state
    assert store.load_room(catalog, "nope") is None


def test_a_failed_batch_stores_nothing(catalog):
    _, state = make_room(catalog)
    store.append_events(catalog, "room1", [event(1)])
    results = store.append_batches(catalog, [("room1", [event(2), {**event(4), "at": 2**70}], to_json(state), 2),
                                             ("room1", [event(3, text="ok")], None, None)])
    assert results[0] is not None and results[1] is None  # `at` does not fit a BIGINT
    assert [e["seq"] for e in store.events_since(catalog, "room1", 0)] == [1, 3]
    assert store.get_room(catalog, "room1").snapshot_seq == 0


def test_first_missing_finds_the_first_gap_not_the_last_seq(catalog):
    make_room(catalog)
    store.append_events(catalog, "room1", [event(s) for s in (1, 2, 3, 6, 7)])
    assert store.first_missing(catalog, "room1", 0, 7) == 4
    assert store.first_missing(catalog, "room1", 5, 7) is None
    assert store.first_missing(catalog, "room1", 5, 9) == 8
    assert store.first_missing(catalog, "room1", 0, 3) is None
    assert store.first_missing(catalog, "nope", 0, 2) == 1


def test_an_event_stored_twice_is_stored_once(catalog):
    """A process may store events another published (a takeover): the first stored stays."""
    make_room(catalog)
    store.append_events(catalog, "room1", [event(1, text="hello 1"), event(2, text="first")])
    assert store.append_batches(catalog, [("room1", [event(2, text="again"), event(3, text="hello 3")], None, None)]) == [None]
    assert [(e["seq"], e["text"]) for e in store.events_since(catalog, "room1", 0)] == [
        (1, "hello 1"), (2, "first"), (3, "hello 3")]


def test_load_gives_the_snapshot_and_the_events_after_it_which_rebuild_the_state(catalog):
    _, state = make_room(catalog)
    store.add_member(catalog, "room1", "m-bo", "Bo", "hash-bo")
    events = [{**join_event(state, "m-ann", "Ann"), "seq": 1}]
    apply(state, events[0])
    events.append({**join_event(state, "m-bo", "Bo"), "seq": 2})
    events += [event(3, "trying", garment="tshirt", size="M", colourway="navy", product_id=None, name=None),
               event(4, "left", member="m-bo", reason="left"), event(5, "chat", text="bye", member="m-ann")]
    for e in events[1:3]:
        apply(state, e)
    store.append_events(catalog, "room1", events[:3], to_json(state), 3)
    store.append_events(catalog, "room1", events[3:])
    loaded = store.load_room(catalog, "room1")
    assert loaded.row.snapshot_seq == 3 and [e["seq"] for e in loaded.events] == [4, 5]
    rebuilt = from_json(loaded.snapshot)
    for e in loaded.events:
        apply(rebuilt, e)
    for e in events[3:]:
        apply(state, e)
    assert rebuilt == state and view(rebuilt)["seq"] == 5 and list(rebuilt.members) == ["m-ann"]
    # the `left` event marked the member row
    assert store.member_by_token(catalog, "room1", "hash-bo").left_at is not None
    assert store.member_by_token(catalog, "room1", "hash-ann").left_at is None


def test_an_ended_event_marks_the_room_and_deleting_a_room_cascades(catalog):
    make_room(catalog)
    store.append_events(catalog, "room1", [event(1, "ended")])
    assert store.get_room(catalog, "room1").ended_at is not None
    with catalog.session() as s, s.begin():
        s.execute(text("DELETE FROM rooms WHERE id = 'room1'"))
    with catalog.session() as s:
        assert s.scalar(select(RoomMember.id)) is None and s.scalar(select(RoomEvent.seq)) is None
        assert s.scalar(select(Room.id)) is None


def test_event_bodies_keep_unicode_and_server_only_fields(catalog):
    make_room(catalog)
    body = event(1, "stage", on=True, session_id="sess-secret")
    store.append_events(catalog, "room1", [body, event(2, text="ünïcødé 👍 \n two lines")])
    got = store.events_since(catalog, "room1", 0)
    assert got[0] == body and got[1]["text"] == "ünïcødé 👍 \n two lines"
