"""The shared rooms' tables (SQLAlchemy 2 declarative, on the catalogue's `Base`): rooms, members, events.

- `rooms`: one row a room: its settings, the sha256 of its invite token, and the latest stored
  snapshot of its state (`state`, the JSON of `room_state.to_json`, at sequence `snapshot_seq`).
- `room_members`: everyone who ever joined; only the sha256 of a member token is kept (`token_hash`,
  unique). `left_at` is set when the member leaves, is kicked or times out.
- `room_events`: the room's sequenced events, `(room_id, seq)` the key; `body` is the whole event as
  published (server-only fields such as a stage's session id included: a reload applies it).

The schema is changed only through Alembic revisions (`assets/migrations/versions/0002_rooms.py`);
`assets/migrations/env.py` imports this module so that autogenerate sees these tables.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from assets.catalog_models import Base, utcnow


class Room(Base):
    __tablename__ = "rooms"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(80), default="")
    product_ids: Mapped[list] = mapped_column(JSON, default=list)
    max_members: Mapped[int] = mapped_column(Integer)
    invite_hash: Mapped[str] = mapped_column(String(64))
    invite_expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    state: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    snapshot_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class RoomMember(Base):
    __tablename__ = "room_members"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(16), ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    joined_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    left_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RoomEvent(Base):
    __tablename__ = "room_events"

    room_id: Mapped[str] = mapped_column(String(16), ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    type: Mapped[str] = mapped_column(String(24))
    member_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    at: Mapped[int] = mapped_column(BigInteger)  # unix milliseconds, as in the event
    body: Mapped[dict] = mapped_column(JSON)
