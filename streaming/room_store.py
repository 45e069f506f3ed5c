"""The shared rooms in the catalogue database: rooms, members and sequenced events (sync SQLAlchemy).

Every function takes the `CatalogDB` and runs its own transaction; the hub calls them through
`asyncio.to_thread`, never per message: events are written behind, in batches (`append_batches`:
every room's events of a write-behind period, with the rooms' due snapshots, in one transaction,
through Core statements: a per-room ORM transaction cost 0.2 ms of GIL-held CPU, too much at
thousands of events a second).

Stored forms:

- a room's `state` is `room_state.to_json(state)` at `snapshot_seq`; the snapshot only moves forward
  (`UPDATE ... WHERE snapshot_seq < :seq`), so two writers (two processes, a late batch) never take it
  back;
- an event is stored whole in `body` (server-only fields included) with `type`, `member_id` and `at`
  beside it for queries; storing an event whose seq is stored already does nothing (the broker gives
  each seq one event, and a process may store events another published and did not store); `load_room` gives the snapshot and the events after it, which replayed in
  order give the room's state at its last stored event;
- tokens (invites, members) are stored as their SHA-256 only (`hash_token`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import Iterable

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from assets.catalog_models import utcnow
from streaming.room_models import Room, RoomEvent, RoomMember


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token: what the database keeps of an invite or member token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite gives back naive datetimes for DateTime(timezone=True) columns; they were written in UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


@dataclasses.dataclass(frozen=True)
class RoomRow:
    id: str
    name: str
    product_ids: list
    max_members: int
    invite_hash: str
    invite_expires_at: dt.datetime
    created_at: dt.datetime
    ended_at: dt.datetime | None
    snapshot_seq: int

    @classmethod
    def of(cls, room: Room) -> "RoomRow":
        return cls(room.id, room.name, list(room.product_ids or []), room.max_members, room.invite_hash,
                   _aware(room.invite_expires_at), _aware(room.created_at), _aware(room.ended_at), room.snapshot_seq)


@dataclasses.dataclass(frozen=True)
class MemberRow:
    id: str
    room_id: str
    name: str
    joined_at: dt.datetime
    left_at: dt.datetime | None

    @classmethod
    def of(cls, m: RoomMember) -> "MemberRow":
        return cls(m.id, m.room_id, m.name, _aware(m.joined_at), _aware(m.left_at))


@dataclasses.dataclass(frozen=True)
class LoadedRoom:
    """A room as stored: its row, the snapshot (`room_state.to_json`) at `row.snapshot_seq`, and the
    stored events after it in seq order."""

    row: RoomRow
    snapshot: dict | None
    events: list[dict]


def create_room(db, room_id: str, name: str, product_ids: list[int], max_members: int, invite_hash: str,
                invite_expires_at: dt.datetime, state: dict | None = None,
                host: tuple[str, str, str] | None = None) -> RoomRow:
    """Inserts a room with its snapshot `state` at seq 0 and, when given, its first member
    `host = (member_id, name, token_hash)`, in one transaction."""
    with db.session() as s, s.begin():
        room = Room(id=room_id, name=name, product_ids=list(product_ids), max_members=max_members,
                    invite_hash=invite_hash, invite_expires_at=invite_expires_at, created_at=utcnow(),
                    state=state, snapshot_seq=0)
        s.add(room)
        if host is not None:
            s.flush()  # the room row before its member (the foreign key)
            member_id, member_name, token_hash = host
            s.add(RoomMember(id=member_id, room_id=room_id, name=member_name, token_hash=token_hash,
                             joined_at=utcnow()))
        s.flush()
        return RoomRow.of(room)


def get_room(db, room_id: str) -> RoomRow | None:
    with db.session() as s:
        room = s.get(Room, room_id)
        return RoomRow.of(room) if room is not None else None


def add_member(db, room_id: str, member_id: str, name: str, token_hash: str) -> MemberRow:
    with db.session() as s, s.begin():
        m = RoomMember(id=member_id, room_id=room_id, name=name, token_hash=token_hash, joined_at=utcnow())
        s.add(m)
        s.flush()
        return MemberRow.of(m)


def member_by_token(db, room_id: str, token_hash: str) -> MemberRow | None:
    """The member of `room_id` whose token hashes to `token_hash` (left or not), or None."""
    with db.session() as s:
        m = s.scalar(select(RoomMember).where(RoomMember.token_hash == token_hash, RoomMember.room_id == room_id))
        return MemberRow.of(m) if m is not None else None


def mark_left(db, room_id: str, member_id: str, at: dt.datetime | None = None) -> None:
    with db.session() as s, s.begin():
        s.execute(update(RoomMember).where(RoomMember.id == member_id, RoomMember.room_id == room_id,
                                           RoomMember.left_at.is_(None)).values(left_at=at or utcnow()))


def _ms_datetime(ms) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(int(ms) / 1000, dt.timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return utcnow()


Batch = tuple  # (room_id, events, snapshot | None, snapshot_seq | None)


def _insert_new(conn, table):
    """INSERT that skips rows whose primary key is stored (PostgreSQL and SQLite: ON CONFLICT DO NOTHING)."""
    dialect = {"postgresql": postgresql, "sqlite": sqlite}.get(conn.dialect.name)
    if dialect is None:
        return insert(table)
    return dialect.insert(table).on_conflict_do_nothing(index_elements=[c.name for c in table.primary_key])


def _write(conn, batches: list[Batch]) -> None:
    """Every batch's rows through one connection (Core statements: no ORM unit of work per event)."""
    rows = [{"room_id": room_id, "seq": int(e["seq"]), "type": str(e.get("type", "")), "member_id": e.get("member"),
             "at": int(e.get("at") or 0), "body": e} for room_id, events, _, _ in batches for e in events]
    if rows:
        conn.execute(_insert_new(conn, RoomEvent.__table__), rows)
    for room_id, events, snapshot, snapshot_seq in batches:
        for e in events:
            kind = e.get("type")
            if kind == "left" and e.get("member"):
                conn.execute(update(RoomMember.__table__)
                             .where(RoomMember.id == e["member"], RoomMember.room_id == room_id,
                                    RoomMember.left_at.is_(None))
                             .values(left_at=_ms_datetime(e.get("at"))))
            elif kind == "ended":
                conn.execute(update(Room.__table__).where(Room.id == room_id, Room.ended_at.is_(None))
                             .values(ended_at=_ms_datetime(e.get("at"))))
        if snapshot is not None and snapshot_seq is not None:
            conn.execute(update(Room.__table__).where(Room.id == room_id, Room.snapshot_seq < snapshot_seq)
                         .values(state=snapshot, snapshot_seq=snapshot_seq))


def append_events(db, room_id: str, events: list[dict], snapshot: dict | None = None,
                  snapshot_seq: int | None = None) -> None:
    """Stores sequenced `events` (each with `seq`, `type`, `member`, `at`) and, when given, the room's
    snapshot at `snapshot_seq` (kept only if newer than the stored one), in one transaction.

    A `left` event also sets its member's `left_at`, an `ended` event the room's `ended_at`.
    """
    with db.engine.begin() as conn:
        _write(conn, [(room_id, events, snapshot, snapshot_seq)])


def append_batches(db, batches: Iterable[Batch]) -> list[Exception | None]:
    """`append_events` for several rooms `(room_id, events, snapshot, snapshot_seq)` in ONE transaction
    (one commit for a whole write-behind period); when it fails, each room's batch again in its own,
    so one room's failure spares the others. Returns None or the exception per batch, in order."""
    batches = list(batches)
    if not batches:
        return []
    try:
        with db.engine.begin() as conn:
            _write(conn, batches)
        return [None] * len(batches)
    except Exception as e:  # noqa: BLE001 - retried one by one below
        if len(batches) == 1:
            return [e]
    results: list[Exception | None] = []
    for batch in batches:
        try:
            with db.engine.begin() as conn:
                _write(conn, [batch])
            results.append(None)
        except Exception as e:  # noqa: BLE001 - reported to the caller, which keeps the batch
            results.append(e)
    return results


def load_room(db, room_id: str) -> LoadedRoom | None:
    """The stored room: its row, snapshot and the events after the snapshot (None: no such room)."""
    with db.session() as s:
        room = s.get(Room, room_id)
        if room is None:
            return None
        row = RoomRow.of(room)
        bodies = s.scalars(select(RoomEvent.body).where(RoomEvent.room_id == room_id,
                                                        RoomEvent.seq > room.snapshot_seq)
                           .order_by(RoomEvent.seq)).all()
        return LoadedRoom(row, room.state, list(bodies))


def events_since(db, room_id: str, seq: int, until: int | None = None, limit: int | None = None) -> list[dict]:
    """Stored events of the room with `seq < event seq <= until` (no upper bound when None), in order."""
    with db.session() as s:
        q = select(RoomEvent.body).where(RoomEvent.room_id == room_id, RoomEvent.seq > seq)
        if until is not None:
            q = q.where(RoomEvent.seq <= until)
        q = q.order_by(RoomEvent.seq)
        if limit is not None:
            q = q.limit(limit)
        return list(s.scalars(q).all())


def first_missing(db, room_id: str, after: int, until: int) -> int | None:
    """The smallest seq in `after < seq <= until` with no stored event (None: all are stored)."""
    with db.session() as s:
        seqs = s.scalars(select(RoomEvent.seq).where(RoomEvent.room_id == room_id, RoomEvent.seq > after,
                                                     RoomEvent.seq <= until).order_by(RoomEvent.seq)).all()
    for want, seq in zip(range(after + 1, until + 1), seqs):
        if seq != want:
            return want
    return after + len(seqs) + 1 if after + len(seqs) < until else None


def last_seq(db, room_id: str) -> int:
    """The largest stored seq of the room (its snapshot's when it has no later events; 0 for none)."""
    with db.session() as s:
        top = s.scalar(select(func.max(RoomEvent.seq)).where(RoomEvent.room_id == room_id))
        snap = s.scalar(select(Room.snapshot_seq).where(Room.id == room_id))
        return max(int(top or 0), int(snap or 0))
