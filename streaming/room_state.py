"""A shared room's state and its pure rules: `decide` turns a member's message into an event, `apply`
folds a sequenced event into the state, `view` is what members may see.

Pure: no I/O, no clock, no randomness except through `new_id`. The state is event-sourced: every
process that applies the same events in `seq` order holds the same state, so `apply` re-checks
each event against the state at its seq (two processes may `decide` from the same older state)
and an event that is no longer valid changes nothing but `state.seq`.

Events here are bodies `{"type", "member", ...fields}`; the broker adds `seq`, the hub `room_id`
and `at`. A `stage` event with `"on": true` carries the member's try-on `session_id`: it is kept
in the state (`Member.stage_session`) and must be removed before the event reaches any member
(`public_event`); `view` never includes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

from streaming.room_protocol import (
    EPHEMERAL, CartAdd, CartRemove, Chat, End, HandOver, Kick, Leave, Lock, MuteChat, Ping, Pointer, React,
    RoomProtocolError, Rtc, Stage, Talking, Trying, Typing, Voice, Vote,
)

HOST_ONLY = {"kick", "mute_chat", "hand_over", "lock", "end"}
LEAVE_REASONS = ("left", "kicked", "timeout")
PRESENCE = ("online", "away")
SERVER_ONLY_FIELDS = ("session_id",)  # event fields that never reach a member
MAX_CART_ITEMS = 100  # bounds the snapshot; the 101st item is refused
SNAPSHOT_VERSION = 1


@dataclass
class Member:
    """A member who has not left. `trying` is the product they are trying on (the fields of a
    `trying` event), `trying_seq` that event's seq (the look others vote on); `stage_session` is
    their try-on session while on stage, server-only."""

    id: str
    name: str
    host: bool = False
    online: bool = True
    chat_muted: bool = False
    trying: dict | None = None
    trying_seq: int | None = None
    on_stage: bool = False
    stage_session: str | None = None


@dataclass
class RoomState:
    """One room. `members` in join order; `cart` item id -> item in insertion order; `votes` look
    seq -> member id -> +1/-1 (only current looks, only non-zero votes)."""

    id: str
    name: str
    product_ids: list[int]
    max_members: int
    members: dict[str, Member] = field(default_factory=dict)
    host: str | None = None
    locked: bool = False
    chat_muted_all: bool = False
    ended: bool = False
    cart: dict[str, dict] = field(default_factory=dict)
    votes: dict[int, dict[str, int]] = field(default_factory=dict)
    seq: int = 0

    @property
    def stage(self) -> str | None:
        """The member on stage, if any (at most one)."""
        return next((m.id for m in self.members.values() if m.on_stage), None)


def new_room(room_id: str, name: str, product_ids: list[int], max_members: int, host_id: str,
             host_name: str) -> RoomState:
    """A room at seq 0 with no members yet; `host_id` is its host-to-be.

    The hub then publishes `join_event(state, host_id, host_name)` as the room's first event
    (seq 1): the state holds only what events made, so a replay from seq 0 rebuilds it exactly.
    `host_name` is checked here so a bad name fails before anything is stored.
    """
    if not host_id or not host_name:
        raise ValueError("a room needs its host's id and name")
    return RoomState(id=room_id, name=name, product_ids=list(product_ids), max_members=max_members, host=host_id)


# ---- events made by the server --------------------------------------------------------------------


def join_event(state: RoomState, member_id: str, name: str) -> dict:
    """The `joined` event for a new member; RoomProtocolError room_ended / room_locked / room_full.

    A join decided before a `locked` (or another join filling the room) is ignored by `apply`:
    after applying it, check `member_id in state.members` before answering the join.
    """
    if state.ended:
        raise RoomProtocolError("room_ended", "The room has ended.")
    if state.locked:
        raise RoomProtocolError("room_locked", "The host has locked the room: it takes no new members.")
    if len(state.members) >= state.max_members:
        raise RoomProtocolError("room_full", f"The room is full ({state.max_members} members).")
    return {"type": "joined", "member": member_id, "name": name, "host": _becomes_host(state, member_id)}


def presence_event(member_id: str, status: str, reason: str | None = None) -> dict:
    """`online` when a member's socket (re)connects, `away` when their last socket dropped, or with
    reason `server_gone` when the server process that held it stopped."""
    if status not in PRESENCE:
        raise ValueError(f"presence is one of {PRESENCE}, not {status!r}")
    event = {"type": "presence", "member": member_id, "status": status}
    if reason is not None:
        event["reason"] = reason
    return event


def left_event(member_id: str, reason: str, by: str | None = None) -> dict:
    """A member leaves (`left`), is kicked (`kicked`, `by` the host) or timed out (`timeout`)."""
    if reason not in LEAVE_REASONS:
        raise ValueError(f"a leave reason is one of {LEAVE_REASONS}, not {reason!r}")
    event = {"type": "left", "member": member_id, "reason": reason}
    if by is not None:
        event["by"] = by
    return event


def public_event(event: dict) -> dict:
    """The event as members receive it: without the server-only fields (the stage's session id)."""
    if not any(k in event for k in SERVER_ONLY_FIELDS):
        return event
    return {k: v for k, v in event.items() if k not in SERVER_ONLY_FIELDS}


def tally(state: RoomState, look: int) -> dict:
    """{"up": n, "down": n} of the votes on a look."""
    values = state.votes.get(look, {}).values()
    return {"up": sum(1 for v in values if v > 0), "down": sum(1 for v in values if v < 0)}


# ---- decide ---------------------------------------------------------------------------------------


def decide(state: RoomState, member_id: str, msg, new_id: Callable[[], str]) -> dict | None:
    """The event body `member_id`'s message `msg` makes, or None when it makes none (`ping`).

    Ephemeral bodies (type in EPHEMERAL) are for `Broker.signal`, not `publish`; one with a `to`
    (`rtc`, a `voice` answer) is for that member alone (`no_such_member` unless it is another
    current member). Raises
    RoomProtocolError (with the message's ref) when the member may not: `room_ended`, `forbidden`,
    `chat_muted`, `no_such_member`, `no_such_item`, `no_such_look`, `invalid_message`. Whether a
    stage `session_id` is the member's own (`not_your_session`) is the hub's check: it knows the
    sessions. Checks against `state` as it is now; `apply` checks again at the event's seq.
    """
    ref = getattr(msg, "ref", None)

    def refuse(code: str, detail: str):
        raise RoomProtocolError(code, detail, ref)

    if isinstance(msg, Ping):
        return None  # answered with a pong whatever the room's state
    if state.ended:
        refuse("room_ended", "The room has ended.")
    me = state.members.get(member_id)
    if me is None:
        refuse("forbidden", "You are not a member of this room.")
    if msg.type in HOST_ONLY and state.host != member_id:
        refuse("forbidden", f"Only the host may {msg.type.replace('_', ' ')}.")
    body = {"type": msg.type, "member": member_id}

    if isinstance(msg, Chat):
        if _chat_muted(state, me):
            refuse("chat_muted", "The host has muted your chat.")
        return body | {"text": msg.text}
    if isinstance(msg, React):
        if msg.look is not None:
            _current_look(state, msg.look, refuse)
            return {"type": "reaction", "member": member_id, "emoji": msg.emoji, "look": msg.look}
        return {"type": "reaction", "member": member_id, "emoji": msg.emoji}
    if isinstance(msg, Vote):
        _current_look(state, msg.look, refuse)
        after = dict(state.votes.get(msg.look, {}))
        if msg.value:
            after[member_id] = msg.value
        else:
            after.pop(member_id, None)
        counts = {"up": sum(1 for v in after.values() if v > 0), "down": sum(1 for v in after.values() if v < 0)}
        return body | {"look": msg.look, "value": msg.value, "tally": counts}
    if isinstance(msg, Trying):
        return body | _garment(msg)
    if isinstance(msg, CartAdd):
        if len(state.cart) >= MAX_CART_ITEMS:
            refuse("forbidden", f"The cart holds at most {MAX_CART_ITEMS} items.")
        item = {"item_id": new_id(), **_garment(msg), "qty": msg.qty, "added_by": member_id}
        return {"type": "cart_added", "member": member_id, "item": item}
    if isinstance(msg, CartRemove):
        item = state.cart.get(msg.item_id)
        if item is None:
            refuse("no_such_item", f"No item {msg.item_id!r} in the cart.")
        if item["added_by"] != member_id and state.host != member_id:
            refuse("forbidden", "Only whoever added an item, or the host, may remove it.")
        return {"type": "cart_removed", "member": member_id, "item_id": msg.item_id}
    if isinstance(msg, Stage):
        if msg.on:
            if not msg.session_id:
                refuse("invalid_message", "stage: session_id is required to go on stage")
            return body | {"on": True, "session_id": msg.session_id}
        return body | {"on": False}
    if isinstance(msg, (Typing, Talking)):
        if isinstance(msg, Typing) and msg.on and _chat_muted(state, me):
            return None  # a muted member's typing dots would tell of a message that cannot come
        return body | {"on": msg.on}
    if isinstance(msg, Pointer):
        return body | {"x": msg.x, "y": msg.y}
    if isinstance(msg, (Voice, Rtc)) and msg.to is not None:
        # Addressed to one other member (the hub delivers it to that member's socket alone).
        if msg.to == member_id or msg.to not in state.members:
            refuse("no_such_member", f"No other member {msg.to!r} in this room.")
    if isinstance(msg, Voice):
        return body | {"on": msg.on} | ({"to": msg.to} if msg.to is not None else {})
    if isinstance(msg, Rtc):
        if "sdp" in msg.model_fields_set:
            return body | {"to": msg.to, "sdp": {"type": msg.sdp.type, "sdp": msg.sdp.sdp}}
        return body | {"to": msg.to, "candidate": msg.candidate.model_dump() if msg.candidate is not None else None}
    if isinstance(msg, Kick):
        if msg.member == member_id:
            refuse("forbidden", "The host cannot kick themself: leave, or hand over first.")
        _member(state, msg.member, refuse)
        return left_event(msg.member, "kicked", by=member_id)
    if isinstance(msg, MuteChat):
        if msg.member is not None:
            _member(state, msg.member, refuse)
            if msg.member == state.host:
                refuse("forbidden", "The host's chat cannot be muted.")
        return {"type": "chat_muted", "member": member_id, "on": msg.on, "target": msg.member}
    if isinstance(msg, HandOver):
        _member(state, msg.member, refuse)
        if msg.member == member_id:
            refuse("invalid_message", "hand_over: member: you are the host already")
        return {"type": "host", "member": member_id, "target": msg.member}
    if isinstance(msg, Lock):
        return {"type": "locked", "member": member_id, "on": msg.on}
    if isinstance(msg, End):
        return {"type": "ended", "member": member_id}
    if isinstance(msg, Leave):
        return left_event(member_id, "left")
    refuse("unknown_type", f"No rule for a {type(msg).__name__} message.")


def _garment(msg) -> dict:
    return {"product_id": msg.product_id, "garment": msg.garment, "size": msg.size, "colourway": msg.colourway,
            "name": msg.name}


def _chat_muted(state: RoomState, member: Member) -> bool:
    return member.chat_muted or (state.chat_muted_all and member.id != state.host)


def _member(state: RoomState, member_id: str, refuse) -> Member:
    if member_id not in state.members:
        refuse("no_such_member", f"No member {member_id!r} in this room.")
    return state.members[member_id]


def _current_look(state: RoomState, look: int, refuse) -> None:
    if not _is_current_look(state, look):
        refuse("no_such_look", f"Look {look} is not anyone's current look.")


def _is_current_look(state: RoomState, look) -> bool:
    return any(m.trying_seq == look for m in state.members.values())


def _becomes_host(state: RoomState, member_id: str) -> bool:
    # The host-to-be of a new room, or anyone joining a room whose members have all left.
    return state.host == member_id or state.host is None


# ---- apply ----------------------------------------------------------------------------------------


def apply(state: RoomState, event: dict) -> None:
    """Folds the sequenced `event` into `state`.

    Total and deterministic: never raises; an ephemeral event (seq None) or one at or below
    `state.seq` (already applied: a replay overlapping the snapshot) is ignored entirely; an
    event not valid at its seq (its actor gone or no longer host, a join into a locked or full
    room, a vote on a replaced look, ...) changes only `state.seq`.
    """
    seq = event.get("seq") if isinstance(event, dict) else None
    if type(seq) is not int or seq <= state.seq:
        return
    state.seq = seq
    if state.ended:
        return  # an ended room is frozen
    handler = _APPLY.get(event.get("type"))
    if handler is not None:
        handler(state, event, seq)


def _actor(state: RoomState, event: dict, host: bool = False) -> Member | None:
    """The event's actor while still a member (and still the host when `host`)."""
    member = state.members.get(event.get("member")) if isinstance(event.get("member"), str) else None
    if member is None or (host and state.host != member.id):
        return None
    return member


def _apply_joined(state, event, seq):
    member_id, name = event.get("member"), event.get("name")
    if not isinstance(member_id, str) or not isinstance(name, str) or member_id in state.members:
        return
    if state.locked or len(state.members) >= state.max_members:
        return
    # Who becomes host is decided here, not taken from the event: two joins racing into a room
    # without members both say host=true, and only the first in seq order may be it.
    host = _becomes_host(state, member_id)
    state.members[member_id] = Member(id=member_id, name=name, host=host)
    if host:
        state.host = member_id


def _apply_presence(state, event, seq):
    member = _actor(state, event)
    if member is not None and event.get("status") in PRESENCE:
        member.online = event["status"] == "online"


def _apply_left(state, event, seq):
    member = _actor(state, event)
    if member is None:
        return
    reason = event.get("reason")
    if reason not in LEAVE_REASONS:
        return
    if reason == "kicked":
        by = event.get("by")
        if by == member.id or by is None or by != state.host:
            return  # the kicker lost the host role before this seq
    del state.members[member.id]
    _drop_look(state, member.trying_seq)
    for look in list(state.votes):
        state.votes[look].pop(member.id, None)
        if not state.votes[look]:
            del state.votes[look]
    if state.host == member.id:
        # The earliest-joined remaining member (members keep join order), so every process agrees.
        state.host = next(iter(state.members), None)
        if state.host is not None:
            state.members[state.host].host = True


def _apply_trying(state, event, seq):
    member = _actor(state, event)
    if member is None:
        return
    _drop_look(state, member.trying_seq)  # votes were on the look being replaced
    member.trying = {k: event.get(k) for k in ("product_id", "garment", "size", "colourway", "name")}
    member.trying_seq = seq


def _drop_look(state: RoomState, look: int | None) -> None:
    if look is not None:
        state.votes.pop(look, None)


def _apply_vote(state, event, seq):
    member = _actor(state, event)
    look, value = event.get("look"), event.get("value")
    if member is None or type(look) is not int or value not in (-1, 0, 1) or type(value) is not int:
        return
    if not _is_current_look(state, look):
        return
    votes = state.votes.setdefault(look, {})
    if value:
        votes[member.id] = value
    else:
        votes.pop(member.id, None)
    if not votes:
        del state.votes[look]
    # The event's tally is decide's projection; the state's tally is always recounted from `votes`.


def _apply_cart_added(state, event, seq):
    member, item = _actor(state, event), event.get("item")
    if member is None or not isinstance(item, dict) or len(state.cart) >= MAX_CART_ITEMS:
        return
    item_id = item.get("item_id")
    if not isinstance(item_id, str) or item_id in state.cart:
        return
    state.cart[item_id] = {"item_id": item_id, **{k: item.get(k) for k in ("product_id", "garment", "size", "colourway")},
                           "qty": item.get("qty"), "name": item.get("name"), "added_by": member.id}


def _apply_cart_removed(state, event, seq):
    member = _actor(state, event)
    item = state.cart.get(event.get("item_id")) if isinstance(event.get("item_id"), str) else None
    if member is None or item is None:
        return
    if item["added_by"] == member.id or state.host == member.id:
        del state.cart[item["item_id"]]


def _apply_stage(state, event, seq):
    member = _actor(state, event)
    if member is None:
        return
    if event.get("on") is True:
        session = event.get("session_id")
        if not isinstance(session, str) or not session:
            return
        for other in state.members.values():  # one stage: the newcomer takes it
            other.on_stage, other.stage_session = False, None
        member.on_stage, member.stage_session = True, session
    elif event.get("on") is False:
        member.on_stage, member.stage_session = False, None


def _apply_chat_muted(state, event, seq):
    member, on, target = _actor(state, event, host=True), event.get("on"), event.get("target")
    if member is None or type(on) is not bool:
        return
    if target is None:
        state.chat_muted_all = on
    elif target in state.members and target != state.host:
        state.members[target].chat_muted = on


def _apply_host(state, event, seq):
    member, target = _actor(state, event, host=True), event.get("target")
    if member is None or target == member.id or target not in state.members:
        return
    member.host = False
    state.members[target].host = True
    state.host = target


def _apply_locked(state, event, seq):
    member, on = _actor(state, event, host=True), event.get("on")
    if member is not None and type(on) is bool:
        state.locked = on


def _apply_ended(state, event, seq):
    if _actor(state, event, host=True) is None:
        return
    state.ended = True
    for m in state.members.values():  # nothing is streamed from an ended room
        m.on_stage, m.stage_session = False, None


_APPLY = {"joined": _apply_joined, "presence": _apply_presence, "left": _apply_left, "trying": _apply_trying,
          "vote": _apply_vote, "cart_added": _apply_cart_added, "cart_removed": _apply_cart_removed,
          "stage": _apply_stage, "chat_muted": _apply_chat_muted, "host": _apply_host, "locked": _apply_locked,
          "ended": _apply_ended}
# chat and reaction change nothing held: apply only moves seq. EPHEMERAL events never reach apply.
assert not EPHEMERAL & _APPLY.keys()


# ---- what members see, what is stored -------------------------------------------------------------


def view(state: RoomState, member_id: str | None = None) -> dict:
    """The room as `member_id` sees it (JSON-able, a copy): never a stage session.

    `votes` maps each look's seq, as a string (JSON object keys are strings), to its tally, with
    `mine` (+1, -1 or 0) when a member is given: who voted what is not shown, one's own vote is.
    A member's `chat_muted` is their own mute; `chat_muted_all` mutes everyone but the host.
    """
    return {
        "id": state.id, "name": state.name, "product_ids": list(state.product_ids), "max_members": state.max_members,
        "host": state.host, "locked": state.locked, "chat_muted_all": state.chat_muted_all, "ended": state.ended,
        "members": [{"id": m.id, "name": m.name, "host": m.host, "online": m.online, "chat_muted": m.chat_muted,
                     "trying": dict(m.trying) if m.trying is not None else None, "trying_seq": m.trying_seq,
                     "on_stage": m.on_stage} for m in state.members.values()],
        "cart": [dict(item) for item in state.cart.values()],
        "votes": {str(look): tally(state, look) | ({"mine": state.votes[look].get(member_id, 0)} if member_id else {})
                  for look in sorted(state.votes)},
        "stage": state.stage,
        "seq": state.seq,
    }


def to_json(state: RoomState) -> dict:
    """The stored snapshot (stage sessions included), JSON-able and canonical.

    Ordered things are lists (a JSONB column does not keep key order); votes are sorted, so two
    equal states give equal snapshots whatever order their votes came in.
    """
    return {
        "v": SNAPSHOT_VERSION, "id": state.id, "name": state.name, "product_ids": list(state.product_ids),
        "max_members": state.max_members, "host": state.host, "locked": state.locked,
        "chat_muted_all": state.chat_muted_all, "ended": state.ended, "seq": state.seq,
        "members": [asdict(m) for m in state.members.values()],
        "cart": [dict(item) for item in state.cart.values()],
        "votes": {str(look): dict(sorted(state.votes[look].items())) for look in sorted(state.votes)},
    }


def from_json(doc: dict) -> RoomState:
    """The state `to_json` stored (ValueError for another snapshot version)."""
    if doc.get("v") != SNAPSHOT_VERSION:
        raise ValueError(f"room snapshot version {doc.get('v')!r} is not {SNAPSHOT_VERSION}")
    members = {}
    for m in doc["members"]:
        member = Member(**m)
        member.trying = dict(member.trying) if member.trying is not None else None
        members[member.id] = member
    return RoomState(
        id=doc["id"], name=doc["name"], product_ids=list(doc["product_ids"]), max_members=doc["max_members"],
        members=members, host=doc["host"], locked=doc["locked"], chat_muted_all=doc["chat_muted_all"],
        ended=doc["ended"], cart={item["item_id"]: dict(item) for item in doc["cart"]},
        votes={int(look): dict(sorted(v.items())) for look, v in sorted(doc["votes"].items(), key=lambda kv: int(kv[0]))},
        seq=doc["seq"],
    )
