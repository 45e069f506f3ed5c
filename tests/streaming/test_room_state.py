"""Room state: decide's refusals, apply's effects, determinism, snapshots and what members see."""

from __future__ import annotations

import copy
import itertools
import json

import pytest

from streaming.room_protocol import EPHEMERAL, RoomProtocolError, parse_client_message
from streaming.room_state import (
    MAX_CART_ITEMS, Member, RoomState, apply, decide, from_json, join_event, left_event, new_room, presence_event,
    public_event, tally, to_json, view,
)

SESSION = "sess-SECRET-42"


class Room:
    """A room and its event log, with seqs assigned as the broker would."""

    def __init__(self, max_members: int = 4):
        self.state = new_room("r1", "Friday fits", [11, 12], max_members, "ann", "Ann")
        self.log: list[dict] = []
        self._ids = (f"item{i}" for i in itertools.count(1))
        self.publish(join_event(self.state, "ann", "Ann"))

    def publish(self, body: dict) -> dict:
        event = {**body, "seq": len(self.log) + 1, "room_id": "r1", "at": 1_700_000_000_000 + len(self.log)}
        self.log.append(event)
        apply(self.state, event)
        return event

    def do(self, member: str, doc: dict) -> dict | None:
        """A member's message, decided then published (ephemeral events are only returned)."""
        body = decide(self.state, member, parse_client_message(json.dumps(doc)), lambda: next(self._ids))
        if body is None or body["type"] in EPHEMERAL:
            return body
        return self.publish(body)

    def refused(self, member: str, doc: dict) -> RoomProtocolError:
        before = to_json(self.state)
        with pytest.raises(RoomProtocolError) as info:
            self.do(member, doc)
        assert to_json(self.state) == before  # a refusal never changes the room
        return info.value

    def join(self, member: str, name: str) -> dict:
        return self.publish(join_event(self.state, member, name))


def members(state: RoomState) -> list[str]:
    return list(state.members)


@pytest.fixture
def room() -> Room:
    r = Room()
    r.join("bo", "Bo")
    r.join("cy", "Cy")
    return r


def test_new_room_holds_nothing_until_the_host_joins():
    state = new_room("r1", "Friday fits", [11], 8, "ann", "Ann")
    assert (state.seq, state.members, state.host, state.ended) == (0, {}, "ann", False)
    assert join_event(state, "ann", "Ann") == {"type": "joined", "member": "ann", "name": "Ann", "host": True}
    with pytest.raises(ValueError):
        new_room("r1", "", [], 8, "ann", "")


def test_scripted_room(room):
    s = room.state
    # create + joins: the creator is the host, the others are not
    assert members(s) == ["ann", "bo", "cy"] and s.seq == 3 and s.host == "ann"
    assert [m.host for m in s.members.values()] == [True, False, False]
    assert join_event(s, "di", "Di")["host"] is False

    # trying: the look is the trying event's seq
    e = room.do("bo", {"type": "trying", "product_id": 11, "size": "M", "colourway": "navy", "name": "Oxford"})
    assert e["seq"] == 4 and e["member"] == "bo"
    assert s.members["bo"].trying == {"product_id": 11, "garment": None, "size": "M", "colourway": "navy", "name": "Oxford"}
    assert s.members["bo"].trying_seq == 4

    # votes: each carries the tally; voting on your own look is allowed; 0 withdraws
    assert room.do("ann", {"type": "vote", "look": 4, "value": 1})["tally"] == {"up": 1, "down": 0}
    assert room.do("cy", {"type": "vote", "look": 4, "value": -1})["tally"] == {"up": 1, "down": 1}
    assert room.do("bo", {"type": "vote", "look": 4, "value": 1})["tally"] == {"up": 2, "down": 1}
    assert room.do("cy", {"type": "vote", "look": 4, "value": 0})["tally"] == {"up": 2, "down": 0}
    assert s.votes == {4: {"ann": 1, "bo": 1}} and view(s)["votes"] == {"4": {"up": 2, "down": 0}}
    # each member sees their own vote, nobody else's
    assert [view(s, m)["votes"]["4"]["mine"] for m in ("ann", "bo", "cy")] == [1, 1, 0]
    assert room.refused("ann", {"type": "vote", "look": 3, "value": 1}).code == "no_such_look"  # a join, not a look

    # a new look drops the votes on the previous one
    room.do("bo", {"type": "trying", "garment": "dress", "size": "S", "colourway": "red"})
    assert s.members["bo"].trying_seq == 9 and s.votes == {}
    assert room.refused("ann", {"type": "vote", "look": 4, "value": 1, "ref": "v"}).ref == "v"
    room.do("cy", {"type": "vote", "look": 9, "value": 1})

    # cart: add gets an item id from new_id; remove by the adder
    e = room.do("cy", {"type": "cart_add", "product_id": 12, "size": "L", "colourway": "black", "qty": 2})
    assert e["item"] == {"item_id": "item1", "product_id": 12, "garment": None, "size": "L", "colourway": "black",
                         "qty": 2, "name": None, "added_by": "cy"}
    room.do("bo", {"type": "cart_add", "garment": "tshirt", "size": "M", "colourway": "white"})
    assert list(s.cart) == ["item1", "item2"]
    assert room.refused("bo", {"type": "cart_remove", "item_id": "item1"}).code == "forbidden"  # not yours
    assert room.refused("bo", {"type": "cart_remove", "item_id": "item9"}).code == "no_such_item"
    room.do("cy", {"type": "cart_remove", "item_id": "item1"})
    assert list(s.cart) == ["item2"]

    # stage: one member at a time, a newcomer takes it over
    room.do("bo", {"type": "stage", "on": True, "session_id": "sess-bo"})
    assert s.stage == "bo" and s.members["bo"].stage_session == "sess-bo"
    room.do("cy", {"type": "stage", "on": True, "session_id": "sess-cy"})
    assert s.stage == "cy" and (s.members["bo"].on_stage, s.members["bo"].stage_session) == (False, None)
    assert s.members["cy"].stage_session == "sess-cy"

    # kick: host only; the kicked member's votes and stage go with them
    assert room.refused("bo", {"type": "kick", "member": "cy"}).code == "forbidden"
    assert room.refused("ann", {"type": "kick", "member": "zed"}).code == "no_such_member"
    assert room.refused("ann", {"type": "kick", "member": "ann"}).code == "forbidden"
    e = room.do("ann", {"type": "kick", "member": "cy"})
    assert {k: e[k] for k in ("type", "member", "reason", "by")} == {"type": "left", "member": "cy", "reason": "kicked", "by": "ann"}
    assert members(s) == ["ann", "bo"] and s.stage is None and s.votes == {}

    # hand_over: the new host has the host's powers, the old one none
    room.join("di", "Di")
    room.do("ann", {"type": "hand_over", "member": "bo"})
    assert s.host == "bo" and [m.host for m in s.members.values()] == [False, True, False]
    assert room.refused("ann", {"type": "lock", "on": True}).code == "forbidden"

    # the host leaves: the earliest-joined remaining member becomes host
    room.do("bo", {"type": "leave"})
    assert members(s) == ["ann", "di"] and s.host == "ann" and s.members["ann"].host

    # lock: join refused by join_event, and a join decided before the lock is ignored by apply
    early = join_event(s, "eve", "Eve")
    room.do("ann", {"type": "lock", "on": True})
    assert s.locked
    with pytest.raises(RoomProtocolError) as info:
        join_event(s, "fay", "Fay")
    assert info.value.code == "room_locked"
    seq = room.publish(early)["seq"]
    assert "eve" not in s.members and s.seq == seq

    # end: host only; then everything is refused and nothing applies
    assert room.refused("di", {"type": "end"}).code == "forbidden"
    room.do("ann", {"type": "end"})
    assert s.ended
    assert room.refused("di", {"type": "chat", "text": "hello?"}).code == "room_ended"
    assert room.refused("ann", {"type": "leave"}).code == "room_ended"
    with pytest.raises(RoomProtocolError) as info:
        join_event(s, "gus", "Gus")
    assert info.value.code == "room_ended"
    assert room.do("di", {"type": "ping"}) is None  # still answered with a pong
    final = view(s)
    assert final["ended"] and final["host"] == "ann" and [m["id"] for m in final["members"]] == ["ann", "di"]
    assert final["cart"] == [{"item_id": "item2", "product_id": None, "garment": "tshirt", "size": "M",
                              "colourway": "white", "qty": 1, "name": None, "added_by": "bo"}]
    assert final["seq"] == len(room.log) == s.seq


def test_events_carry_the_actor_and_the_fields(room):
    assert room.do("bo", {"type": "chat", "text": "hi"})["text"] == "hi"
    e = room.do("bo", {"type": "react", "emoji": "🔥"})
    assert (e["type"], e["member"], e["emoji"], "look" in e) == ("reaction", "bo", "🔥", False)
    assert room.do("ann", {"type": "mute_chat", "on": True})["target"] is None
    assert room.do("ann", {"type": "lock", "on": False})["on"] is False
    # ephemeral events are bodies for Broker.signal: never applied
    assert room.do("bo", {"type": "pointer", "x": 0.25, "y": 1}) == {"type": "pointer", "member": "bo", "x": 0.25, "y": 1.0}
    assert room.do("ann", {"type": "talking", "on": True}) == {"type": "talking", "member": "ann", "on": True}


def test_voice_and_rtc_are_addressed_ephemeral_bodies(room):
    before = to_json(room.state)
    assert room.do("bo", {"type": "voice", "on": True}) == {"type": "voice", "member": "bo", "on": True}
    assert room.do("ann", {"type": "voice", "on": True, "to": "bo"}) == {"type": "voice", "member": "ann", "on": True,
                                                                         "to": "bo"}
    offer = {"type": "offer", "sdp": "v=0\r\n"}
    assert room.do("ann", {"type": "rtc", "to": "bo", "sdp": offer, "ref": "x"}) == {
        "type": "rtc", "member": "ann", "to": "bo", "sdp": offer}
    cand = {"candidate": "candidate:1 1 udp 1 10.0.0.2 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0,
            "usernameFragment": None}
    assert room.do("bo", {"type": "rtc", "to": "ann", "candidate": cand}) == {
        "type": "rtc", "member": "bo", "to": "ann", "candidate": cand}
    assert room.do("bo", {"type": "rtc", "to": "ann", "candidate": None}) == {
        "type": "rtc", "member": "bo", "to": "ann", "candidate": None}
    # a muted chat does not mute voice
    room.do("ann", {"type": "mute_chat", "on": True, "member": "bo"})
    assert room.do("bo", {"type": "voice", "on": False})["on"] is False
    assert to_json(room.state)["seq"] == before["seq"] + 1  # only the mute was an event
    # the addressee must be another current member
    for doc in ({"type": "rtc", "to": "zed", "candidate": None, "ref": "r"},
                {"type": "rtc", "to": "ann", "candidate": None, "ref": "r"},
                {"type": "voice", "on": True, "to": "ann", "ref": "r"}):
        error = room.refused("ann", doc)
        assert (error.code, error.ref) == ("no_such_member", "r"), doc
    room.do("cy", {"type": "leave"})
    assert room.refused("ann", {"type": "rtc", "to": "cy", "candidate": None}).code == "no_such_member"
    assert room.refused("cy", {"type": "rtc", "to": "ann", "candidate": None}).code == "forbidden"  # not a member
    # apply ignores them (they have no seq)
    state = copy.deepcopy(room.state)
    apply(room.state, {"type": "rtc", "member": "ann", "to": "bo", "candidate": None, "seq": None})
    assert to_json(room.state) == to_json(state)


def test_chat_mutes(room):
    s = room.state
    room.do("ann", {"type": "mute_chat", "on": True, "member": "bo"})
    assert s.members["bo"].chat_muted and not s.chat_muted_all
    assert room.refused("bo", {"type": "chat", "text": "hey", "ref": "c1"}).to_event() == {
        "type": "error", "code": "chat_muted", "detail": "The host has muted your chat.", "ref": "c1"}
    assert room.do("bo", {"type": "typing", "on": True}) is None  # silently dropped
    room.do("cy", {"type": "chat", "text": "still here"})
    # everyone but the host
    room.do("ann", {"type": "mute_chat", "on": True})
    assert room.refused("cy", {"type": "chat", "text": "x"}).code == "chat_muted"
    room.do("ann", {"type": "chat", "text": "host speaks"})
    assert room.refused("ann", {"type": "mute_chat", "on": True, "member": "ann"}).code == "forbidden"
    assert room.refused("ann", {"type": "mute_chat", "on": True, "member": "zed"}).code == "no_such_member"
    assert room.refused("bo", {"type": "mute_chat", "on": False}).code == "forbidden"
    # lifting the room-wide mute keeps the one-member mute
    room.do("ann", {"type": "mute_chat", "on": False})
    room.do("cy", {"type": "chat", "text": "back"})
    assert room.refused("bo", {"type": "chat", "text": "x"}).code == "chat_muted"
    room.do("ann", {"type": "mute_chat", "on": False, "member": "bo"})
    room.do("bo", {"type": "chat", "text": "thanks"})


def test_other_refusals(room):
    assert room.refused("ann", {"type": "hand_over", "member": "zed"}).code == "no_such_member"
    assert room.refused("ann", {"type": "hand_over", "member": "ann"}).code == "invalid_message"
    assert room.refused("zed", {"type": "chat", "text": "let me in"}).code == "forbidden"
    assert room.refused("bo", {"type": "react", "emoji": "🔥", "look": 2}).code == "no_such_look"
    for doc in ({"type": "kick", "member": "cy"}, {"type": "hand_over", "member": "cy"}, {"type": "lock", "on": True},
                {"type": "end"}, {"type": "mute_chat", "on": True, "member": "cy"}):
        assert room.refused("bo", doc).code == "forbidden", doc["type"]
    # stage on with no session: the model refuses it, and decide refuses a model built around that
    from streaming.room_protocol import Stage
    with pytest.raises(RoomProtocolError) as info:
        decide(room.state, "bo", Stage.model_construct(type="stage", on=True, session_id=None), lambda: "x")
    assert info.value.code == "invalid_message"


def test_full_room():
    room = Room(max_members=2)
    room.join("bo", "Bo")
    with pytest.raises(RoomProtocolError) as info:
        join_event(room.state, "cy", "Cy")
    assert info.value.code == "room_full"
    room.do("bo", {"type": "leave"})  # a member who left frees a place
    assert join_event(room.state, "cy", "Cy")["host"] is False


def test_presence_and_timeout(room):
    s = room.state
    room.publish(presence_event("bo", "away"))
    assert s.members["bo"].online is False and view(s)["members"][1]["online"] is False
    room.publish(presence_event("bo", "online"))
    assert s.members["bo"].online is True
    room.publish(presence_event("bo", "away"))
    room.publish(left_event("bo", "timeout"))
    assert members(s) == ["ann", "cy"]
    with pytest.raises(ValueError):
        presence_event("bo", "asleep")
    with pytest.raises(ValueError):
        left_event("bo", "bored")


def test_the_last_member_leaving_and_a_new_host():
    room = Room()
    room.join("bo", "Bo")
    room.do("ann", {"type": "leave"})
    room.do("bo", {"type": "leave"})
    assert room.state.host is None and room.state.members == {}
    event = room.join("cy", "Cy")
    assert event["host"] is True and room.state.host == "cy" and room.state.members["cy"].host


# ---- races: an event decided from an older state, invalid at its seq, changes only seq ----------


def assert_only_seq_moves(room: Room, body: dict) -> None:
    before = to_json(room.state)
    event = room.publish(body)
    after = to_json(room.state)
    assert after["seq"] == event["seq"]
    assert {**after, "seq": before["seq"]} == before


def test_races_change_only_seq(room):
    s = room.state
    room.do("bo", {"type": "trying", "product_id": 11, "size": "M", "colourway": "navy"})
    look = s.members["bo"].trying_seq
    room.do("cy", {"type": "cart_add", "product_id": 12, "size": "L", "colourway": "black"})

    # decided while ann was host, applied after she handed over
    kick = decide(s, "ann", parse_client_message('{"type": "kick", "member": "cy"}'), lambda: "x")
    lock = decide(s, "ann", parse_client_message('{"type": "lock", "on": true}'), lambda: "x")
    end = decide(s, "ann", parse_client_message('{"type": "end"}'), lambda: "x")
    mute = decide(s, "ann", parse_client_message('{"type": "mute_chat", "on": true}'), lambda: "x")
    hand = decide(s, "ann", parse_client_message('{"type": "hand_over", "member": "cy"}'), lambda: "x")
    remove = decide(s, "ann", parse_client_message('{"type": "cart_remove", "item_id": "item1"}'), lambda: "x")
    room.do("ann", {"type": "hand_over", "member": "bo"})
    for body in (kick, lock, end, mute, hand, remove):
        assert_only_seq_moves(room, body)

    # a vote on a look replaced in between
    vote = decide(s, "cy", parse_client_message(json.dumps({"type": "vote", "look": look, "value": 1})), lambda: "x")
    room.do("bo", {"type": "trying", "garment": "dress", "size": "S", "colourway": "red"})
    assert_only_seq_moves(room, vote)

    # the actor left in between
    chat = decide(s, "cy", parse_client_message('{"type": "chat", "text": "bye"}'), lambda: "x")
    stage = decide(s, "cy", parse_client_message('{"type": "stage", "on": true, "session_id": "s-cy"}'), lambda: "x")
    add = decide(s, "cy", parse_client_message('{"type": "cart_add", "garment": "skirt", "size": "S", "colourway": "red"}'),
                 lambda: "late")
    room.do("cy", {"type": "leave"})
    for body in (chat, stage, add, presence_event("cy", "online"), left_event("cy", "left")):
        assert_only_seq_moves(room, body)

    # two joins racing for the last places
    j1, j2, j3 = (join_event(s, m, m.upper()) for m in ("d1", "d2", "d3"))
    room.publish(j1)
    room.publish(j2)
    assert len(s.members) == 4
    assert_only_seq_moves(room, j3)  # past max_members
    assert_only_seq_moves(room, j1)  # already a member

    # a second removal of the same item, and an unknown event type
    room.do("ann", {"type": "cart_add", "garment": "skirt", "size": "S", "colourway": "red"})
    item = list(s.cart)[-1]
    rm = {"type": "cart_removed", "member": "ann", "item_id": item}
    room.publish(rm)
    assert_only_seq_moves(room, rm)
    assert_only_seq_moves(room, {"type": "confetti", "member": "ann"})
    assert_only_seq_moves(room, {"type": "vote", "member": "ann"})  # malformed: fields missing


def test_two_hosts_racing_into_an_empty_room():
    room = Room()
    room.do("ann", {"type": "leave"})
    a, b = join_event(room.state, "x", "X"), join_event(room.state, "y", "Y")
    assert a["host"] and b["host"]  # both decided from the hostless room
    room.publish(a)
    room.publish(b)
    assert room.state.host == "x" and not room.state.members["y"].host


def test_apply_ignores_ephemeral_replayed_and_odd_events(room):
    before = to_json(room.state)
    apply(room.state, {"type": "typing", "member": "bo", "on": True, "seq": None})
    apply(room.state, {**room.log[0], "seq": 1})  # already applied: a replay overlapping the snapshot
    apply(room.state, {"type": "ended", "member": "ann", "seq": True})  # a bool is not a seq
    apply(room.state, {"type": "ended", "member": "ann"})
    apply(room.state, {})
    assert to_json(room.state) == before


def test_tally_and_a_cart_limit():
    room = Room()
    room.do("ann", {"type": "trying", "garment": "dress", "size": "S", "colourway": "red"})
    assert tally(room.state, 2) == {"up": 0, "down": 0}
    room.do("ann", {"type": "vote", "look": 2, "value": -1})
    assert tally(room.state, 2) == {"up": 0, "down": 1}
    for _ in range(MAX_CART_ITEMS):
        room.do("ann", {"type": "cart_add", "garment": "tshirt", "size": "M", "colourway": "white"})
    assert room.refused("ann", {"type": "cart_add", "garment": "tshirt", "size": "M", "colourway": "white"}).code == "forbidden"


# ---- determinism, snapshots, privacy ----------------------------------------------------------


def busy_room() -> Room:
    room = Room(max_members=5)
    for m in ("bo", "cy", "di"):
        room.join(m, m.title())
    room.do("di", {"type": "trying", "product_id": 11, "size": "M", "colourway": "navy"})
    room.do("bo", {"type": "trying", "garment": "dress", "size": "S", "colourway": "red", "name": "Wrap"})
    room.do("cy", {"type": "vote", "look": 6, "value": 1})
    room.do("ann", {"type": "vote", "look": 5, "value": -1})
    room.do("bo", {"type": "vote", "look": 5, "value": 1})
    room.do("cy", {"type": "cart_add", "product_id": 12, "size": "L", "colourway": "black", "qty": 3})
    room.do("bo", {"type": "stage", "on": True, "session_id": SESSION})
    room.do("ann", {"type": "mute_chat", "on": True, "member": "di"})
    room.publish(presence_event("cy", "away"))
    room.do("ann", {"type": "hand_over", "member": "cy"})
    return room


def test_same_events_same_state():
    room = busy_room()
    replayed = []
    for _ in range(2):
        state = new_room("r1", "Friday fits", [11, 12], 5, "ann", "Ann")
        for event in copy.deepcopy(room.log):
            apply(state, event)
        replayed.append(state)
    assert to_json(replayed[0]) == to_json(replayed[1]) == to_json(room.state)
    assert json.dumps(to_json(replayed[0])) == json.dumps(to_json(room.state))
    # a snapshot taken midway plus the rest of the log is the same state too
    state = new_room("r1", "Friday fits", [11, 12], 5, "ann", "Ann")
    for event in room.log[:7]:
        apply(state, event)
    resumed = from_json(json.loads(json.dumps(to_json(state))))
    for event in room.log:  # the whole log: the first 7 are skipped as already applied
        apply(resumed, event)
    assert to_json(resumed) == to_json(room.state)


def test_snapshot_round_trip():
    state = busy_room().state
    doc = json.loads(json.dumps(to_json(state)))  # through text, as the store keeps it
    back = from_json(doc)
    assert back == state
    assert to_json(back) == to_json(state)
    assert back.votes == {5: {"ann": -1, "bo": 1}, 6: {"cy": 1}} and all(type(k) is int for k in back.votes)
    assert back.members["bo"].stage_session == SESSION  # the server keeps it
    assert list(back.members) == ["ann", "bo", "cy", "di"] and list(back.cart) == list(state.cart)
    # key order lost in storage (a JSONB column) does not change the state
    shuffled = {**doc, "votes": dict(reversed(list(doc["votes"].items())))}
    assert to_json(from_json(shuffled)) == to_json(state)
    with pytest.raises(ValueError):
        from_json({**doc, "v": 99})


def test_view_never_shows_a_stage_session():
    room = busy_room()
    state = room.state
    seen = view(state)
    text = json.dumps(seen)
    assert SESSION not in text and "session" not in text
    assert seen["stage"] == "bo" and [m["on_stage"] for m in seen["members"]] == [False, True, False, False]
    assert seen == json.loads(text)  # JSON-able as it is
    assert seen["votes"] == {"5": {"up": 1, "down": 1}, "6": {"up": 1, "down": 0}}
    assert seen["host"] == "cy" and seen["members"][3]["chat_muted"] and not seen["members"][2]["online"]
    assert seen["members"][1] == {"id": "bo", "name": "Bo", "host": False, "online": True, "chat_muted": False,
                                  "trying": {"product_id": None, "garment": "dress", "size": "S", "colourway": "red",
                                             "name": "Wrap"}, "trying_seq": 6, "on_stage": True}
    assert set(seen) == {"id", "name", "product_ids", "max_members", "host", "locked", "chat_muted_all", "ended",
                         "members", "cart", "votes", "stage", "seq"}
    # a copy: changing it does not change the room
    seen["members"][1]["trying"]["size"] = "XL"
    seen["cart"][0]["qty"] = 9
    assert state.members["bo"].trying["size"] == "S" and state.cart["item1"]["qty"] == 3
    # the stage event as members get it
    stage = next(e for e in room.log if e["type"] == "stage")
    assert stage["session_id"] == SESSION
    assert SESSION not in json.dumps(public_event(stage)) and public_event(stage)["on"] is True
    assert public_event(room.log[0]) is room.log[0]


def test_leaving_the_stage(room):
    s = room.state
    room.do("bo", {"type": "stage", "on": True, "session_id": "s-bo"})
    room.do("bo", {"type": "stage", "on": False})
    assert s.stage is None and s.members["bo"].stage_session is None
    room.do("bo", {"type": "stage", "on": True, "session_id": "s-bo"})
    room.do("bo", {"type": "leave"})
    assert s.stage is None
    room.do("cy", {"type": "stage", "on": True, "session_id": "s-cy"})
    room.do("ann", {"type": "end"})
    assert s.stage is None and s.members["cy"].stage_session is None  # nothing streams from an ended room


def test_member_defaults():
    m = Member(id="a", name="A")
    assert (m.host, m.online, m.chat_muted, m.trying, m.trying_seq, m.on_stage, m.stage_session) == (
        False, True, False, None, None, False, None)
