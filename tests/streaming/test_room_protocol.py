"""The room wire protocol: every client message parses; every bad frame gets its own error code."""

from __future__ import annotations

import json
import random

import pytest
from pydantic import ValidationError

from fitroom.errors import FitroomError
from streaming import room_protocol as rp
from streaming.room_protocol import (
    CLOSE, EPHEMERAL, MAX_MESSAGE_BYTES, MESSAGE_TYPES, REACTIONS, RoomCreate, RoomJoin, RoomProtocolError,
    clean_text, parse_client_message,
)


def parse(doc, **kw):
    return parse_client_message(json.dumps(doc), **kw)


def refused(raw, **kw) -> RoomProtocolError:
    with pytest.raises(RoomProtocolError) as info:
        parse_client_message(raw if isinstance(raw, (str, bytes)) or raw is None else json.dumps(raw), **kw)
    return info.value


# One valid message of every type, with the fields the model should hold.
VALID = [
    ({"type": "chat", "text": "that colour suits you"}, rp.Chat, {"text": "that colour suits you"}),
    ({"type": "react", "emoji": "🔥"}, rp.React, {"emoji": "🔥", "look": None}),
    ({"type": "react", "emoji": "❤️", "look": 7}, rp.React, {"emoji": "❤️", "look": 7}),
    ({"type": "vote", "look": 4, "value": -1}, rp.Vote, {"look": 4, "value": -1}),
    ({"type": "trying", "product_id": 12, "size": "M", "colourway": "navy", "name": "Oxford shirt"}, rp.Trying,
     {"product_id": 12, "garment": None, "size": "M", "colourway": "navy", "name": "Oxford shirt"}),
    ({"type": "trying", "garment": "dress", "size": "S", "colourway": "red"}, rp.Trying,
     {"product_id": None, "garment": "dress", "name": None}),
    ({"type": "cart_add", "product_id": 3, "size": "L", "colourway": "black", "qty": 2}, rp.CartAdd,
     {"product_id": 3, "qty": 2}),
    ({"type": "cart_add", "garment": "tshirt", "size": "L", "colourway": "black"}, rp.CartAdd, {"qty": 1}),
    ({"type": "cart_remove", "item_id": "it-1"}, rp.CartRemove, {"item_id": "it-1"}),
    ({"type": "stage", "on": True, "session_id": "sess-abc"}, rp.Stage, {"on": True, "session_id": "sess-abc"}),
    ({"type": "stage", "on": False}, rp.Stage, {"on": False, "session_id": None}),
    ({"type": "typing", "on": True}, rp.Typing, {"on": True}),
    ({"type": "talking", "on": False}, rp.Talking, {"on": False}),
    ({"type": "pointer", "x": 0, "y": 0.75}, rp.Pointer, {"x": 0.0, "y": 0.75}),
    ({"type": "voice", "on": True}, rp.Voice, {"on": True, "to": None}),
    ({"type": "voice", "on": True, "to": "m2"}, rp.Voice, {"on": True, "to": "m2"}),
    ({"type": "rtc", "to": "m2", "sdp": {"type": "offer", "sdp": "v=0\r\ns=-\r\n"}}, rp.Rtc,
     {"to": "m2", "sdp": rp.SessionDescription(type="offer", sdp="v=0\r\ns=-\r\n"), "candidate": None}),
    ({"type": "rtc", "to": "m2", "candidate": {"candidate": "candidate:1 1 udp 1 10.0.0.2 5000 typ host",
                                               "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "u"}},
     rp.Rtc, {"sdp": None, "candidate": rp.IceCandidate(candidate="candidate:1 1 udp 1 10.0.0.2 5000 typ host",
                                                        sdpMid="0", sdpMLineIndex=0, usernameFragment="u")}),
    ({"type": "rtc", "to": "m2", "candidate": {"candidate": ""}}, rp.Rtc, {"candidate": rp.IceCandidate(candidate="")}),
    ({"type": "rtc", "to": "m2", "candidate": None}, rp.Rtc, {"sdp": None, "candidate": None}),
    ({"type": "kick", "member": "m2"}, rp.Kick, {"member": "m2"}),
    ({"type": "mute_chat", "on": True}, rp.MuteChat, {"on": True, "member": None}),
    ({"type": "mute_chat", "on": False, "member": "m3"}, rp.MuteChat, {"on": False, "member": "m3"}),
    ({"type": "hand_over", "member": "m2"}, rp.HandOver, {"member": "m2"}),
    ({"type": "lock", "on": True}, rp.Lock, {"on": True}),
    ({"type": "end"}, rp.End, {}),
    ({"type": "leave"}, rp.Leave, {}),
    ({"type": "ping", "ref": "p1"}, rp.Ping, {"ref": "p1"}),
]


@pytest.mark.parametrize("doc, model, fields", VALID, ids=[f"{d['type']}-{i}" for i, (d, _, _) in enumerate(VALID)])
def test_every_message_type_parses(doc, model, fields):
    msg = parse(doc)
    assert type(msg) is model and msg.type == doc["type"]
    for name, value in fields.items():
        assert getattr(msg, name) == value, name
    # bytes frames parse the same
    assert parse_client_message(json.dumps(doc).encode()) == msg


def test_the_valid_cases_cover_every_type():
    assert set(MESSAGE_TYPES) == {d["type"] for d, _, _ in VALID}
    assert len(MESSAGE_TYPES) == 19
    assert EPHEMERAL <= set(MESSAGE_TYPES)


def test_ref_is_kept_on_a_valid_message():
    assert parse({"type": "chat", "text": "hi", "ref": "c-17"}).ref == "c-17"


def test_text_is_cleaned_of_control_characters():
    msg = parse({"type": "chat", "text": "  line one\r\nline\x07 two\u202e\x00  "})
    assert msg.text == "line one\nline two"
    # a name loses newlines and tabs too, and padding collapses to one space
    assert clean_text("\tAnn\n\n  Lee\x1b ") == "Ann Lee"
    assert clean_text("Ann\u2066 Lee") == "Ann Lee"
    # emoji sequences keep their zero-width joiners
    assert clean_text("👩\u200d💻") == "👩\u200d💻"
    msg = parse({"type": "trying", "garment": "dress", "size": " M\n", "colourway": "sea\tgreen", "name": "Wrap\x7f dress"})
    assert (msg.size, msg.colourway, msg.name) == ("M", "sea green", "Wrap dress")


def test_lone_surrogates_never_get_through():
    # "\ud800" is valid JSON but not encodable as UTF-8: it would break the socket or the database
    msg = parse_client_message('{"type": "chat", "text": "a\\ud800b", "ref": "ok"}')
    assert msg.text == "ab"
    msg.text.encode("utf-8")
    error = refused('{"type": "chat", "text": "", "ref": "r\\udc00"}')
    assert error.code == "invalid_message" and error.ref is None
    assert refused('{"type": "kick", "member": "m\\ud800"}').detail.startswith("kick: member:")


def test_bad_json():
    for raw in ("{", "", "{'type': 'ping'}", b"\xff\xfe", '{"type": "vote", "look": ' + "1" * 5000 + "}", "[" * 5000):
        error = refused(raw)
        assert error.code == "bad_json", raw[:20]
        assert error.ref is None
    assert refused(None).code == "bad_json"  # not a text frame at all


@pytest.mark.parametrize("raw, kind", [("[]", "array"), ("3", "number"), ('"chat"', "string"), ("null", "null"),
                                       ("true", "boolean")])
def test_a_frame_that_is_not_an_object(raw, kind):
    error = refused(raw)
    assert error.code == "invalid_message"
    assert f"not a JSON {kind}" in error.detail


def test_unknown_type_names_the_known_types():
    error = refused({"type": "dance", "ref": "d1"})
    assert error.code == "unknown_type"
    assert "'dance'" in error.detail
    for kind in MESSAGE_TYPES:
        assert kind in error.detail
    assert error.ref == "d1"
    assert error.to_event() == {"type": "error", "code": "unknown_type", "detail": error.detail, "ref": "d1"}
    assert refused({"type": 5}).code == "unknown_type"
    assert refused({"type": ["chat"]}).code == "unknown_type"


def test_a_message_without_a_type():
    error = refused({"text": "hi", "ref": "r"})
    assert (error.code, error.ref) == ("invalid_message", "r")
    assert error.detail.startswith("type: required")


BAD_FIELDS = [
    ({"type": "chat", "text": "x" * 1001}, "text"),
    ({"type": "chat", "text": " \x07\n "}, "text"),  # empty after cleaning
    ({"type": "chat"}, "text"),
    ({"type": "chat", "text": 5}, "text"),
    ({"type": "chat", "text": "hi", "colour": "red"}, "colour"),
    ({"type": "react", "emoji": "🦄"}, "emoji"),
    ({"type": "react", "emoji": "🔥", "look": 0}, "look"),
    ({"type": "vote", "look": 3, "value": 2}, "value"),
    ({"type": "vote", "look": 3, "value": True}, "value"),
    ({"type": "vote", "look": 3, "value": 1.0}, "value"),
    ({"type": "vote", "look": "3", "value": 1}, "look"),
    ({"type": "trying", "product_id": True, "size": "M", "colourway": "navy"}, "product_id"),
    ({"type": "trying", "product_id": 1, "size": "M" * 17, "colourway": "navy"}, "size"),
    ({"type": "trying", "garment": "dress", "size": "M"}, "colourway"),
    ({"type": "trying", "product_id": 1, "garment": "dress", "size": "M", "colourway": "navy"}, "exactly one"),
    ({"type": "cart_add", "size": "M", "colourway": "navy"}, "exactly one"),
    ({"type": "cart_add", "product_id": 1, "size": "M", "colourway": "navy", "qty": 11}, "qty"),
    ({"type": "cart_add", "product_id": 1, "size": "M", "colourway": "navy", "qty": 0}, "qty"),
    ({"type": "cart_remove", "item_id": ""}, "item_id"),
    ({"type": "stage", "on": True}, "session_id"),
    ({"type": "stage", "on": 1, "session_id": "s"}, "on"),
    ({"type": "typing", "on": "yes"}, "on"),
    ({"type": "pointer", "x": 1.5, "y": 0}, "x"),
    ({"type": "pointer", "x": 0.5, "y": True}, "y"),
    ({"type": "kick"}, "member"),
    ({"type": "mute_chat", "on": True, "member": None, "all": True}, "all"),
    ({"type": "hand_over", "member": "m" * 65}, "member"),
    ({"type": "end", "now": True}, "now"),
    ({"type": "voice", "on": None}, "on"),
    ({"type": "voice", "on": True, "to": ""}, "to"),
    ({"type": "rtc", "candidate": None}, "to"),
    ({"type": "rtc", "to": "m2"}, "exactly one of sdp or candidate"),
    ({"type": "rtc", "to": "m2", "sdp": {"type": "offer", "sdp": "v=0"}, "candidate": None}, "exactly one"),
    ({"type": "rtc", "to": "m2", "sdp": None}, "sdp"),
    ({"type": "rtc", "to": "m2", "sdp": "v=0"}, "sdp"),
    ({"type": "rtc", "to": "m2", "sdp": {"type": "pranswer", "sdp": "v=0"}}, "sdp.type"),
    ({"type": "rtc", "to": "m2", "sdp": {"type": "offer", "sdp": ""}}, "sdp.sdp"),
    ({"type": "rtc", "to": "m2", "sdp": {"type": "offer", "sdp": "v" * (rp.RTC_SDP_MAX + 1)}}, "sdp.sdp"),
    ({"type": "rtc", "to": "m2", "sdp": {"type": "offer", "sdp": "v=0\x00"}}, "sdp.sdp"),
    ({"type": "rtc", "to": "m2", "sdp": {"type": "offer", "sdp": "v=0", "extra": 1}}, "sdp.extra"),
    ({"type": "rtc", "to": "m2", "candidate": {"sdpMid": "0"}}, "candidate.candidate"),
    ({"type": "rtc", "to": "m2", "candidate": {"candidate": "c" * 1025}}, "candidate.candidate"),
    ({"type": "rtc", "to": "m2", "candidate": {"candidate": "", "sdpMLineIndex": -1}}, "candidate.sdpMLineIndex"),
    ({"type": "rtc", "to": "m2", "candidate": {"candidate": "", "sdpMLineIndex": "0"}}, "candidate.sdpMLineIndex"),
    ({"type": "rtc", "to": "m2", "candidate": "candidate:1"}, "candidate"),
]


@pytest.mark.parametrize("doc, named", BAD_FIELDS, ids=[f"{d['type']}-{n}" for d, n in BAD_FIELDS])
def test_invalid_message_names_the_field(doc, named):
    error = refused({**doc, "ref": "q9"})
    assert error.code == "invalid_message"
    assert error.detail.startswith(doc["type"] + ":")
    assert named in error.detail
    assert error.ref == "q9"  # kept so the client can match the error


def test_detail_does_not_echo_the_input():
    error = refused({"type": "chat", "text": "<script>" + "x" * 1200})
    assert "<script>" not in error.detail and len(error.detail) < 200


def test_the_largest_sdp_fits_in_a_frame():
    """An SDP at RTC_SDP_MAX characters, in lines as short as real ones (JSON doubles each CRLF), fits
    MAX_MESSAGE_BYTES with a member id and a ref; one character more is refused by name."""
    line = "a=candidate:1 1 udp 2122260223 10.0.0.2 50000 typ host\r\n"
    sdp = (line * (rp.RTC_SDP_MAX // len(line) + 1))[:rp.RTC_SDP_MAX]
    frame = json.dumps({"type": "rtc", "to": "m" * 64, "sdp": {"type": "offer", "sdp": sdp}, "ref": "r" * 64})
    assert len(frame.encode()) <= MAX_MESSAGE_BYTES
    assert parse_client_message(frame).sdp.sdp == sdp
    assert refused(frame.replace('"sdp": "a=', '"sdp": "aa=')).detail.startswith("rtc: sdp.sdp: String should have at most")


def test_signalling_text_refuses_lone_surrogates():
    assert refused('{"type": "rtc", "to": "m2", "sdp": {"type": "offer", "sdp": "v=0\\ud800"}}').code == "invalid_message"
    assert refused('{"type": "rtc", "to": "m2", "candidate": {"candidate": "\\udfff"}}').code == "invalid_message"


def test_pointer_refuses_nan():
    assert refused('{"type": "pointer", "x": NaN, "y": 0}').code == "invalid_message"


def test_an_unreadable_ref_is_dropped_not_echoed():
    error = refused({"type": "chat", "ref": "r" * 65})
    assert error.code == "invalid_message" and error.ref is None
    assert refused({"type": "nope", "ref": 12}).ref is None


def test_too_large_is_checked_on_bytes_before_parsing():
    pad = MAX_MESSAGE_BYTES - len(json.dumps({"type": "chat", "text": ""}))
    at_limit = json.dumps({"type": "chat", "text": "x" * pad})
    assert len(at_limit.encode()) == MAX_MESSAGE_BYTES
    with pytest.raises(RoomProtocolError) as info:  # at the limit: not too large, but text > 1000
        parse_client_message(at_limit)
    assert info.value.code == "invalid_message"
    error = refused(json.dumps({"type": "chat", "text": "x" * (pad + 1)}))
    assert error.code == "too_large" and str(MAX_MESSAGE_BYTES) in error.detail
    # counted in UTF-8 bytes, not characters: 6000 "é" are 12000 bytes
    frame = json.dumps({"type": "chat", "text": "é" * 6000}, ensure_ascii=False)
    assert len(frame) < 7000
    assert refused(frame, max_bytes=8000).code == "too_large"
    # never parsed, so even broken JSON is too_large
    assert refused("{" * 20000).code == "too_large"
    assert refused(b"[" * 100, max_bytes=99).code == "too_large"


def test_only_room_protocol_errors_come_out():
    """Valid messages with fields swapped for odd JSON values: each parses or is refused cleanly."""
    odd = [None, True, 0, -1, 2**63, 1e308, -0.0, "", " ", "x" * 2000, [], [1], {}, {"a": 1}, "\x00", "🔥"]
    rng = random.Random(6)
    for doc, _, _ in VALID:
        keys = [k for k in doc if k != "type"] + ["type", "ref", "extra"]
        for _ in range(12):
            bad = dict(doc)
            bad[rng.choice(keys)] = rng.choice(odd)
            try:
                parse(bad)
            except RoomProtocolError as e:
                assert e.code in {"invalid_message", "unknown_type"}
                assert isinstance(e.detail, str) and e.detail


def test_error_frame_and_fitroom_error():
    error = RoomProtocolError("forbidden", "Only the host may lock.")
    assert error.to_event() == {"type": "error", "code": "forbidden", "detail": "Only the host may lock."}
    assert isinstance(error, FitroomError)
    assert error.to_dict() == {"error": "forbidden", "detail": "Only the host may lock."}


def test_constants():
    assert MAX_MESSAGE_BYTES == 16384
    assert CLOSE == {"left": 1000, "bad_token": 4401, "kicked": 4403, "no_room": 4404, "replaced": 4408,
                     "room_ended": 4410, "flooding": 4429}
    assert EPHEMERAL == {"typing", "talking", "pointer", "voice", "rtc"}
    assert rp.ADDRESSED == {"voice", "rtc"} and rp.ADDRESSED <= EPHEMERAL
    assert "👍" in REACTIONS and len(set(REACTIONS)) == len(REACTIONS)


def test_room_create_defaults_and_cleaning():
    body = RoomCreate.model_validate({"display_name": "  Ann\tLee "})
    assert (body.display_name, body.name, body.product_ids, body.invite_ttl_s, body.max_members) == ("Ann Lee", "", [], None, None)
    body = RoomCreate.model_validate({"display_name": "Ann", "name": "Friday fits", "product_ids": [4, 2, 4],
                                      "invite_ttl_s": 3600, "max_members": 4})
    assert (body.name, body.product_ids, body.invite_ttl_s, body.max_members) == ("Friday fits", [4, 2], 3600, 4)
    assert RoomCreate.model_validate({"display_name": "x" * 40}).display_name == "x" * 40


@pytest.mark.parametrize("body, field", [
    ({}, "display_name"),
    ({"display_name": " \x01 "}, "display_name"),
    ({"display_name": "x" * 41}, "display_name"),
    ({"display_name": "Ann", "name": "n" * 81}, "name"),
    ({"display_name": "Ann", "product_ids": list(range(1, 52))}, "product_ids"),
    ({"display_name": "Ann", "product_ids": [0]}, "product_ids"),
    ({"display_name": "Ann", "product_ids": ["3"]}, "product_ids"),
    ({"display_name": "Ann", "invite_ttl_s": 59}, "invite_ttl_s"),
    ({"display_name": "Ann", "invite_ttl_s": 7 * 86400 + 1}, "invite_ttl_s"),
    ({"display_name": "Ann", "max_members": 1}, "max_members"),
    ({"display_name": "Ann", "max_members": 65}, "max_members"),
    ({"display_name": "Ann", "max_members": "16"}, "max_members"),
    ({"display_name": "Ann", "max_members": True}, "max_members"),
    ({"display_name": "Ann", "host": True}, "host"),
])
def test_room_create_limits(body, field):
    with pytest.raises(ValidationError) as info:
        RoomCreate.model_validate(body)
    assert info.value.errors()[0]["loc"][0] == field


def test_room_join():
    body = RoomJoin.model_validate({"invite_token": "tok", "display_name": " Bo "})
    assert (body.invite_token, body.display_name) == ("tok", "Bo")
    for bad in ({"invite_token": "", "display_name": "Bo"}, {"invite_token": "t", "display_name": ""},
                {"invite_token": "t"}, {"invite_token": "t", "display_name": "Bo", "host": True}):
        with pytest.raises(ValidationError):
            RoomJoin.model_validate(bad)
