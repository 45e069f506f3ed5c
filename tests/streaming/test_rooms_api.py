"""The rooms' HTTP calls against a real server: create, join and its refusals, the room, the stage offer."""

from __future__ import annotations

import dataclasses
import datetime as dt

import httpx
import pytest
from sqlalchemy import select

from streaming.room_models import Room, RoomMember
from tests.streaming.room_fixtures import room_server  # noqa: F401 (fixture)


@pytest.fixture
def http(room_server):
    with httpx.Client(base_url=room_server.url, timeout=10) as client:
        yield client


def create(http, **fields) -> dict:
    r = http.post("/api/v1/rooms", json={"display_name": "Ann", **fields})
    assert r.status_code == 201, r.text
    return r.json()


def join(http, room, name="Bo", invite=None):
    return http.post(f"/api/v1/rooms/{room['room_id']}/join",
                     json={"invite_token": invite or room["invite_token"], "display_name": name})


def error(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == code and body["detail"], body
    return body


def test_create_answers_tokens_urls_and_the_host_sees_the_room(http, room_server):
    room = create(http, name="  Friday   fits ", product_ids=[7, 3, 7])
    assert set(room) == {"room_id", "name", "invite_token", "invite_url", "invite_expires_at", "member_id",
                         "member_token", "ws_url"}
    assert len(room["room_id"]) == 12 and len(room["invite_token"]) == 32 and len(room["member_token"]) == 32
    assert room["name"] == "Friday fits"
    assert room["invite_url"] == f"/?room={room['room_id']}&invite={room['invite_token']}"
    assert room["ws_url"] == f"/api/v1/rooms/{room['room_id']}/ws?token={room['member_token']}"
    expires = dt.datetime.fromisoformat(room["invite_expires_at"])
    left = (expires - dt.datetime.now(dt.timezone.utc)).total_seconds()
    assert 86_400 - 60 < left <= 86_400  # FITROOM_ROOM_INVITE_TTL_S by default
    r = http.get(f"/api/v1/rooms/{room['room_id']}", params={"token": room["member_token"]})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["room_id"] == room["room_id"] and doc["member_id"] == room["member_id"] and doc["seq"] == 1
    view = doc["room"]
    assert view["name"] == "Friday fits" and view["product_ids"] == [7, 3] and view["max_members"] == 16
    assert view["host"] == room["member_id"] and [m["name"] for m in view["members"]] == ["Ann"]
    assert view["members"][0]["host"] is True and view["seq"] == 1


def test_only_token_hashes_are_stored(http, room_server):
    room = create(http)
    member = join(http, room).json()
    with room_server.app.state.db.session() as s:
        stored = s.get(Room, room["room_id"])
        hashes = set(s.scalars(select(RoomMember.token_hash).where(RoomMember.room_id == room["room_id"])))
    assert room["invite_token"] not in stored.invite_hash and len(hashes) == 2
    assert not {room["member_token"], member["member_token"]} & hashes
    from streaming.room_store import hash_token

    assert hashes == {hash_token(room["member_token"]), hash_token(member["member_token"])}


@pytest.mark.parametrize("body, where", [
    ({}, "display_name"),
    ({"display_name": "   "}, "display_name"),
    ({"display_name": "x" * 41}, "display_name"),
    ({"display_name": "Ann", "name": "n" * 81}, "name"),
    ({"display_name": "Ann", "product_ids": list(range(1, 52))}, "product_ids"),
    ({"display_name": "Ann", "product_ids": [0]}, "product_ids"),
    ({"display_name": "Ann", "invite_ttl_s": 59}, "invite_ttl_s"),
    ({"display_name": "Ann", "invite_ttl_s": 7 * 86400 + 1}, "invite_ttl_s"),
    ({"display_name": "Ann", "max_members": 1}, "max_members"),
    ({"display_name": "Ann", "max_members": 65}, "max_members"),
    ({"display_name": "Ann", "colour": "red"}, "colour"),
])
def test_create_refuses_bad_bodies(http, body, where):
    body = error(http.post("/api/v1/rooms", json=body), 422, "invalid_request")
    assert where in body["detail"]


def test_display_names_are_cleaned(http, room_server):
    room = create(http, display_name="\u202eAnn\tLee\x07 ")
    view = http.get(f"/api/v1/rooms/{room['room_id']}", params={"token": room["member_token"]}).json()["room"]
    assert view["members"][0]["name"] == "Ann Lee"


def test_join_answers_a_member_token_and_refuses_what_it_must(http, room_server):
    room = create(http, max_members=3)
    bo = join(http, room, "Bo")
    assert bo.status_code == 200, bo.text
    bo = bo.json()
    assert set(bo) == {"room_id", "member_id", "member_token", "ws_url"} and bo["room_id"] == room["room_id"]
    assert bo["ws_url"] == f"/api/v1/rooms/{room['room_id']}/ws?token={bo['member_token']}"
    doc = http.get(f"/api/v1/rooms/{room['room_id']}", params={"token": bo["member_token"]}).json()
    assert [m["name"] for m in doc["room"]["members"]] == ["Ann", "Bo"] and doc["seq"] == 2
    assert doc["member_id"] == bo["member_id"] and doc["room"]["host"] == room["member_id"]

    error(join(http, {**room, "room_id": "nosuchroom00"}), 404, "no_room")
    error(join(http, room, invite="x" * 32), 403, "bad_invite")
    error(join(http, room, name=""), 422, "invalid_request")
    assert join(http, room, "Cy").status_code == 200
    error(join(http, room, "Di"), 409, "room_full")  # 3 members who have not left, online or not


def test_an_expired_invite_is_refused(http, room_server):
    room = create(http)
    live = room_server.rooms.rooms[room["room_id"]]
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    live.row = dataclasses.replace(live.row, invite_expires_at=past)
    error(join(http, room), 410, "invite_expired")
    error(join(http, room, invite="y" * 32), 403, "bad_invite")  # a wrong token learns nothing more


def test_get_room_wants_a_member_token(http, room_server):
    room = create(http)
    rid = room["room_id"]
    error(http.get(f"/api/v1/rooms/{rid}"), 401, "bad_token")
    error(http.get(f"/api/v1/rooms/{rid}", params={"token": "nope"}), 401, "bad_token")
    error(http.get(f"/api/v1/rooms/{rid}", params={"token": room["invite_token"]}), 401, "bad_token")
    error(http.get("/api/v1/rooms/nosuchroom00", params={"token": room["member_token"]}), 404, "no_room")
    other = create(http)
    error(http.get(f"/api/v1/rooms/{rid}", params={"token": other["member_token"]}), 401, "bad_token")


def test_stage_offer_without_anyone_on_stage_is_no_stage(http, room_server):
    room = create(http)
    rid = room["room_id"]
    offer = {"sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", "type": "offer"}
    error(http.post(f"/api/v1/rooms/{rid}/stage/offer", params={"token": room["member_token"]}, json=offer),
          404, "no_stage")
    error(http.post(f"/api/v1/rooms/{rid}/stage/offer", params={"token": "bad"}, json=offer), 401, "bad_token")


def test_room_settings_come_from_the_environment_and_bad_ones_are_plain_errors():
    from fitroom.errors import FitroomError
    from fitroom.settings import Settings

    s = Settings.from_env({})
    assert (s.redis_url, s.room_max_members, s.room_grace_s, s.room_invite_ttl_s, s.room_rate, s.room_burst,
            s.room_max_message_bytes) == (None, 16, 30.0, 86_400, 10.0, 20, 16_384)
    s = Settings.from_env({"FITROOM_REDIS_URL": "redis://:pw@localhost:6379/2", "FITROOM_ROOM_MAX_MEMBERS": "4",
                           "FITROOM_ROOM_GRACE_S": "2.5", "FITROOM_ROOM_INVITE_TTL_S": "600",
                           "FITROOM_ROOM_RATE": "5", "FITROOM_ROOM_BURST": "7",
                           "FITROOM_ROOM_MAX_MESSAGE_BYTES": "4096"})
    assert (s.redis_url, s.room_max_members, s.room_grace_s, s.room_invite_ttl_s, s.room_rate, s.room_burst,
            s.room_max_message_bytes) == ("redis://:pw@localhost:6379/2", 4, 2.5, 600, 5.0, 7, 4096)
    assert "pw" not in repr(s)
    for name, value in [("FITROOM_ROOM_MAX_MEMBERS", "1"), ("FITROOM_ROOM_MAX_MEMBERS", "2.5"),
                        ("FITROOM_ROOM_GRACE_S", "soon"), ("FITROOM_ROOM_GRACE_S", "nan"),
                        ("FITROOM_ROOM_INVITE_TTL_S", "59"), ("FITROOM_ROOM_RATE", "0"),
                        ("FITROOM_ROOM_BURST", "-1"), ("FITROOM_ROOM_MAX_MESSAGE_BYTES", "100"),
                        ("FITROOM_REDIS_URL", "localhost:6379")]:
        with pytest.raises(FitroomError) as e:
            Settings.from_env({name: value})
        assert e.value.code == "bad_setting" and name in e.value.message


def test_ice_servers_come_from_the_environment_reach_aiortc_and_the_page(tmp_path):
    """FITROOM_ICE_SERVERS: checked, given to the try-on's aiortc peers and served at /api/v1/rtc."""
    import json

    from fastapi.testclient import TestClient

    from fitroom.errors import FitroomError
    from fitroom.settings import Settings
    from streaming.api_app import create_app
    from streaming.api_tryon import rtc_configuration

    servers = [{"urls": "stun:stun.example.org:3478"},
               {"urls": ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"],
                "username": "shop", "credential": "s3cret"}]
    s = Settings.from_env({"FITROOM_ICE_SERVERS": json.dumps(servers), "FITROOM_DATA_DIR": str(tmp_path)})
    assert s.ice_servers == ({"urls": ["stun:stun.example.org:3478"]}, {**servers[1]})
    assert "s3cret" not in repr(s) and Settings.from_env({}).ice_servers == ()
    config = rtc_configuration(s.ice_servers)
    assert [x.urls for x in config.iceServers] == [["stun:stun.example.org:3478"], servers[1]["urls"]]
    assert (config.iceServers[1].username, config.iceServers[1].credential) == ("shop", "s3cret")
    assert rtc_configuration(()) is None
    with TestClient(create_app(s)) as http:
        assert http.get("/api/v1/rtc").json() == {"ice_servers": list(s.ice_servers)}
    for raw, words in [("stun:x", "JSON"), ('{"urls": "stun:x"}', "list"), ('[{"urls": "http://x"}]', "urls"),
                       ('[{"urls": "turn:x"}]', "username"), ('[{"urls": "stun:x", "port": 1}]', "only"),
                       ('[{"urls": []}]', "urls")]:
        with pytest.raises(FitroomError) as e:
            Settings.from_env({"FITROOM_ICE_SERVERS": raw})
        assert e.value.code == "bad_setting" and "FITROOM_ICE_SERVERS" in e.value.message and words in e.value.message
