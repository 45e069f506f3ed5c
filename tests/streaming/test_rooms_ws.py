"""Shared rooms with real WebSocket clients against a real server: the protocol, bad input and abuse,
resume after a drop, the host's actions, the stage's privacy and a restart of the server."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time

import httpx
import numpy as np

from streaming.room_protocol import RTC_SDP_MAX
from tests.streaming.room_fixtures import GRACE_S, Client, ServerProcess, join, new_room, room_server, run  # noqa: F401

SID = "stage-session-SECRET-7f3a"


async def members(served, http, *names, **room_fields):
    """A room whose host is names[0]; everyone connected, and every socket has read up to the last
    member's `presence online`."""
    room = await new_room(http, names[0], **room_fields)
    rid = room["room_id"]
    clients = [await Client.open(served, rid, room["member_token"])]
    tokens = [room["member_token"]]
    await clients[0].next("presence", member=clients[0].member_id, status="online")
    for name in names[1:]:
        j = await join(http, room, name)
        c = await Client.open(served, rid, j["member_token"])
        clients.append(c)
        tokens.append(j["member_token"])
        for other in clients:
            await other.next("presence", member=c.member_id, status="online")
    return room, clients, tokens


def sequenced(client: Client) -> dict[int, str]:
    """seq -> the exact text of each sequenced event the client received."""
    out = {}
    for text, frame in zip(client.raw, client.frames):
        if frame.get("seq") is not None and frame["type"] != "welcome":
            assert frame["seq"] not in out, f"seq {frame['seq']} received twice"
            out[frame["seq"]] = text
    return out


def test_three_members_chat_react_try_vote_and_share_a_cart(room_server):
    async def main():
        async with httpx.AsyncClient(base_url=room_server.url) as http:
            room, (ann, bo, cy), _ = await members(room_server, http, "Ann", "Bo", "Cy", name="Fri", product_ids=[4, 9])
            assert ann.welcome["seq"] == 1 and ann.welcome["resumed"] is False
            view = ann.welcome["room"]
            assert view["name"] == "Fri" and view["product_ids"] == [4, 9] and view["host"] == ann.member_id
            assert [m["name"] for m in view["members"]] == ["Ann"]
            assert [m["name"] for m in cy.welcome["room"]["members"]] == ["Ann", "Bo", "Cy"]
            joined = await ann.next("joined", member=bo.member_id)
            assert joined["name"] == "Bo" and joined["host"] is False and joined["room_id"] == room["room_id"]
            assert isinstance(joined["at"], int) and abs(joined["at"] / 1000 - time.time()) < 60

            await bo.send({"type": "chat", "text": "hi all", "ref": "m1"})
            chat = await cy.next("chat")
            assert chat["member"] == bo.member_id and chat["text"] == "hi all" and "ref" not in chat
            await cy.send({"type": "react", "emoji": "🔥"})
            assert (await ann.next("reaction"))["emoji"] == "🔥"

            await bo.send({"type": "trying", "garment": "tshirt", "size": "M", "colourway": "navy", "name": "Tee"})
            trying = await ann.next("trying")
            look = trying["seq"]
            assert {k: trying[k] for k in ("product_id", "garment", "size", "colourway", "name")} == {
                "product_id": None, "garment": "tshirt", "size": "M", "colourway": "navy", "name": "Tee"}
            await ann.send({"type": "vote", "look": look, "value": 1})
            assert (await cy.next("vote"))["tally"] == {"up": 1, "down": 0}
            await cy.send({"type": "vote", "look": look, "value": -1})
            vote = await bo.next("vote", member=cy.member_id)
            assert vote["look"] == look and vote["value"] == -1 and vote["tally"] == {"up": 1, "down": 1}
            await ann.send({"type": "vote", "look": look, "value": 0})
            assert (await bo.next("vote", member=ann.member_id, value=0))["tally"] == {"up": 0, "down": 1}
            await cy.send({"type": "react", "emoji": "😍", "look": look})
            assert (await bo.next("reaction", member=cy.member_id, look=look))["emoji"] == "😍"

            await cy.send({"type": "cart_add", "product_id": 4, "size": "L", "colourway": "black", "qty": 2,
                           "name": "Jeans"})
            item = (await ann.next("cart_added"))["item"]
            assert item["product_id"] == 4 and item["qty"] == 2 and item["added_by"] == cy.member_id
            assert item["item_id"] and item["garment"] is None and item["name"] == "Jeans"
            await bo.send({"type": "cart_remove", "item_id": item["item_id"], "ref": "rm"})
            assert await bo.next("error") == {"type": "error", "code": "forbidden", "ref": "rm",
                                              "detail": "Only whoever added an item, or the host, may remove it."}
            await bo.send({"type": "cart_add", "garment": "hoodie", "size": "S", "colourway": "red"})
            kept = (await cy.next("cart_added", member=bo.member_id))["item"]
            await ann.send({"type": "cart_remove", "item_id": item["item_id"]})  # the host may
            assert (await cy.next("cart_removed"))["item_id"] == item["item_id"]

            # ephemeral: to the others, seq null, never stored
            await bo.send({"type": "pointer", "x": 0.25, "y": 0.75})
            await cy.send({"type": "typing", "on": True})
            await ann.send({"type": "talking", "on": True})
            pointer = await ann.next("pointer")
            assert pointer["seq"] is None and (pointer["x"], pointer["y"]) == (0.25, 0.75)
            assert pointer["member"] == bo.member_id
            assert (await bo.next("typing"))["seq"] is None and (await bo.next("talking"))["on"] is True
            await bo.send({"type": "ping"})
            assert await bo.next("pong") == {"type": "pong"}
            await ann.send({"type": "chat", "text": "last"})
            for c in (ann, bo, cy):
                await c.next("chat", text="last")
            assert not [f for f in bo.frames if f["type"] == "pointer"]  # not echoed to the sender
            assert not [f for f in cy.frames if f["type"] == "typing"]

            # every member received every sequenced event once, the very same text
            texts = [sequenced(c) for c in (ann, bo, cy)]
            last = ann.seq
            assert sorted(texts[0]) == list(range(2, last + 1))
            assert sorted(texts[2]) == list(range(cy.welcome["seq"] + 1, last + 1))
            for t in texts[1:]:
                assert all(texts[0][s] == text for s, text in t.items())
            doc = (await http.get(f"/api/v1/rooms/{room['room_id']}", params={"token": room["member_token"]})).json()
            assert doc["seq"] == last
            v = doc["room"]
            assert v["cart"] == [kept] and v["votes"] == {str(look): {"up": 0, "down": 1, "mine": 0}}
            assert [m["trying_seq"] for m in v["members"]] == [None, look, None]
            assert all(m["online"] for m in v["members"])
            for c in (ann, bo, cy):
                await c.close()

    run(main())


def test_bad_messages_get_an_error_and_the_room_goes_on(room_server):
    async def main():
        async with httpx.AsyncClient(base_url=room_server.url) as http:
            room, (ann, bo), _ = await members(room_server, http, "Ann", "Bo")
            before = ann.seq
            bad = [
                ("{not json", "bad_json", None),
                ("[1, 2]", "invalid_message", None),
                (json.dumps({"type": "dance", "ref": "r1"}), "unknown_type", "r1"),
                (json.dumps({"type": "chat", "text": "x" * 20_000, "ref": "big"}), "too_large", None),
                (json.dumps({"type": "chat", "text": "  ", "ref": "r2"}), "invalid_message", "r2"),
                (json.dumps({"type": "chat", "text": "hi", "extra": 1}), "invalid_message", None),
                (json.dumps({"type": "react", "emoji": "🦄"}), "invalid_message", None),
                (json.dumps({"type": "vote", "look": 999, "value": 1, "ref": "v"}), "no_such_look", "v"),
                (json.dumps({"type": "kick", "member": ann.member_id}), "forbidden", None),
                (json.dumps({"type": "cart_remove", "item_id": "nope"}), "no_such_item", None),
                (json.dumps({"type": "hand_over", "member": "nobody"}), "forbidden", None),
                (json.dumps({"type": "stage", "on": True, "session_id": "not-a-session"}), "not_your_session", None),
                (json.dumps({"type": "pointer", "x": 2, "y": 0}), "invalid_message", None),
            ]
            for text, code, ref in bad:
                await bo.send(text)
                err = await bo.next("error")
                assert err["code"] == code and err["detail"], (text[:40], err)
                assert err.get("ref") == ref, err
            await bo.send(b'{"type": "ping"}')  # a binary frame holding JSON is read too
            assert (await bo.next("pong"))["type"] == "pong"
            await bo.send({"type": "chat", "text": "still here"})
            assert (await ann.next("chat"))["text"] == "still here"
            # nothing of it reached Ann, and the room took no event from the refused messages
            assert [f["type"] for f in ann.frames[-1:]] == ["chat"] and ann.seq == before + 1
            assert not [f for f in ann.frames if f["type"] == "error"]
            await ann.send({"type": "chat", "text": "and me"})
            assert (await bo.next("chat", text="and me"))["seq"] == before + 2

    run(main())


# An audio offer as Chromium makes it, with its ICE candidates in it (voice.js sends them in the SDP)
# and many of them, as a browser with several network interfaces sends: about 8 KB.
CHROMIUM_AUDIO_OFFER = "\r\n".join([
    "v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
    "a=extmap-allow-mixed", "a=msid-semantic: WMS 6b5e0b4f-3c1c-4f5e-9a57-0c9b4ad6c3a1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ice-ufrag:Xq3b", "a=ice-pwd:7bPlmkz3PtVyJ0xN4J0zF2qB", "a=ice-options:trickle",
    "a=fingerprint:sha-256 " + ":".join(["A1"] * 32), "a=setup:actpass", "a=mid:0",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid", "a=sendrecv",
    "a=msid:6b5e0b4f-3c1c-4f5e-9a57-0c9b4ad6c3a1 0e4c6a43-0d2f-4b55-8d6e-2d1a9d3f7c11",
    "a=rtcp-mux", "a=rtcp-rsize", "a=rtpmap:111 opus/48000/2", "a=rtcp-fb:111 transport-cc",
    "a=fmtp:111 minptime=10;useinbandfec=1", "a=rtpmap:63 red/48000/2", "a=fmtp:63 111/111",
    "a=rtpmap:9 G722/8000", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:13 CN/8000",
    "a=rtpmap:110 telephone-event/48000", "a=rtpmap:126 telephone-event/8000",
    "a=ssrc:3735928559 cname:Ud3pQ7b1r0kXH2Tn",
    "a=ssrc:3735928559 msid:6b5e0b4f-3c1c-4f5e-9a57-0c9b4ad6c3a1 0e4c6a43-0d2f-4b55-8d6e-2d1a9d3f7c11",
] + [f"a=candidate:{1000 + i} 1 udp 2122260223 10.{i}.0.2 {50000 + i} typ host generation 0 network-id {i} "
     f"network-cost 10" for i in range(72)]) + "\r\n"


def test_rtc_goes_to_its_member_only_and_voice_answers_too(room_server):
    """`rtc` and an addressed `voice` reach the `to` member alone, stamped with the sender; a third
    member never sees them; bad addressees and malformed signalling are refused, the socket stays."""
    async def main():
        async with httpx.AsyncClient(base_url=room_server.url) as http:
            room, (ann, bo, cy), _ = await members(room_server, http, "Ann", "Bo", "Cy")
            assert 8000 < len(CHROMIUM_AUDIO_OFFER) <= RTC_SDP_MAX
            offer = {"type": "offer", "sdp": CHROMIUM_AUDIO_OFFER}
            frame = json.dumps({"type": "rtc", "to": bo.member_id, "sdp": offer})
            assert len(frame.encode()) < 16384  # fits FITROOM_ROOM_MAX_MESSAGE_BYTES
            await ann.send(frame)
            got = await bo.next("rtc")
            assert got["member"] == ann.member_id and got["to"] == bo.member_id and got["sdp"] == offer
            assert got["seq"] is None and got["room_id"] == room["room_id"] and "candidate" not in got
            answer = {"type": "answer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}
            await bo.send({"type": "rtc", "to": ann.member_id, "sdp": answer})
            assert (await ann.next("rtc", member=bo.member_id))["sdp"] == answer
            cand = {"candidate": "candidate:1 1 udp 2122260223 10.0.0.2 50000 typ host generation 0",
                    "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "Xq3b"}
            await ann.send({"type": "rtc", "to": bo.member_id, "candidate": cand})
            await ann.send({"type": "rtc", "to": bo.member_id, "candidate": None})
            assert (await bo.next("rtc"))["candidate"] == cand
            end = await bo.next("rtc")
            assert "candidate" in end and end["candidate"] is None and end["member"] == ann.member_id

            # voice: an announcement goes to everyone else; an answer to its addressee only
            await cy.send({"type": "voice", "on": True})
            for c in (ann, bo):
                v = await c.next("voice", member=cy.member_id)
                assert v["on"] is True and "to" not in v and v["seq"] is None
            await ann.send({"type": "voice", "on": True, "to": cy.member_id})
            assert (await cy.next("voice", member=ann.member_id))["to"] == cy.member_id

            # refusals: to nobody, to oneself, malformed; each an error on the sender's socket only
            bad = [
                ({"type": "rtc", "to": "nobody", "candidate": None, "ref": "r1"}, "no_such_member"),
                ({"type": "rtc", "to": bo.member_id, "candidate": None, "ref": "r2"}, "no_such_member"),
                ({"type": "voice", "on": True, "to": bo.member_id, "ref": "r3"}, "no_such_member"),
                ({"type": "rtc", "to": ann.member_id, "ref": "r4"}, "invalid_message"),  # neither
                ({"type": "rtc", "to": ann.member_id, "sdp": answer, "candidate": None, "ref": "r5"}, "invalid_message"),
                ({"type": "rtc", "to": ann.member_id, "sdp": {"type": "offer", "sdp": "a" * 12001}, "ref": "r6"},
                 "invalid_message"),
                ({"type": "rtc", "to": ann.member_id, "sdp": "v=0", "ref": "r7"}, "invalid_message"),
                ({"type": "rtc", "to": ann.member_id, "sdp": {"type": "rollback", "sdp": "v=0"}, "ref": "r8"},
                 "invalid_message"),
                ({"type": "rtc", "to": ann.member_id, "candidate": {"candidate": 5}, "ref": "r9"}, "invalid_message"),
                ({"type": "rtc", "to": 7, "candidate": None, "ref": "r10"}, "invalid_message"),
            ]
            for doc, code in bad:
                await bo.send(doc)
                err = await bo.next("error")
                assert (err["code"], err["ref"]) == (code, doc["ref"]), (doc, err)
            await bo.send({"type": "ping"})
            assert await bo.next("pong") == {"type": "pong"}
            await bo.send({"type": "chat", "text": "still here"})
            for c in (ann, bo, cy):
                await c.next("chat", text="still here")
            # nothing addressed reached a third member; no error reached anyone but Bo
            assert [f["member"] for f in ann.frames if f["type"] == "rtc"] == [bo.member_id]
            assert [f["member"] for f in bo.frames if f["type"] == "rtc"] == [ann.member_id] * 3
            assert not [f for f in cy.frames if f["type"] == "rtc"]
            assert not [f for f in bo.frames if f["type"] == "voice" and f.get("to")]
            assert not [f for f in ann.frames + cy.frames if f["type"] == "error"]
            assert all(f["seq"] is None for c in (ann, bo, cy) for f in c.frames if f["type"] in ("rtc", "voice"))

    run(main())


def test_a_flooding_member_is_rate_limited_then_closed_and_the_others_go_on(room_server):
    async def main():
        async with httpx.AsyncClient(base_url=room_server.url) as http:
            room, (ann, bo), tokens = await members(room_server, http, "Ann", "Bo")
            for i in range(200):  # burst 20 at 10/s: about 20 pass, then refusals
                await bo.send({"type": "chat", "text": f"spam {i}"})
            code, reason = await bo.closed()
            assert (code, reason) == (4429, "flooding")
            limited = [f for f in bo.frames if f["type"] == "error"]
            assert {f["code"] for f in limited} == {"rate_limited"} and 90 <= len(limited) <= 99
            passed = [f for f in bo.frames if f["type"] == "chat"]
            assert 20 <= len(passed) <= 23
            away = await ann.next("presence", member=bo.member_id, status="away")
            spam = [f for f in ann.frames if f["type"] == "chat"]
            assert [f["text"] for f in spam] == [f["text"] for f in passed] and away["seq"] == passed[-1]["seq"] + 1
            await ann.send({"type": "chat", "text": "calm"})
            assert (await ann.next("chat", text="calm"))["seq"] == away["seq"] + 1
            # the member comes back (its bucket refills at 10/s) and has missed nothing
            await asyncio.sleep(0.3)
            bo2 = await Client.open(room_server, room["room_id"], tokens[1], since=passed[-1]["seq"])
            assert bo2.welcome["resumed"] is True
            assert (await bo2.next("chat", text="calm"))["seq"] == away["seq"] + 1
            await bo2.send({"type": "chat", "text": "sorry"})
            assert (await ann.next("chat", text="sorry"))["member"] == bo.member_id

    run(main())


def test_a_reconnect_within_the_grace_replays_exactly_what_was_missed(room_server):
    async def main():
        async with httpx.AsyncClient(base_url=room_server.url) as http:
            room, (ann, bo), tokens = await members(room_server, http, "Ann", "Bo")
            await ann.send({"type": "chat", "text": "before"})
            await bo.next("chat", text="before")
            n = bo.seq
            await bo.close()
            away = await ann.next("presence", member=bo.member_id, status="away")
            for i in range(3):
                await ann.send({"type": "chat", "text": f"missed {i}"})
            await ann.next("chat", text="missed 2")
            s = ann.seq
            bo2 = await Client.open(room_server, room["room_id"], tokens[1], since=n)
            assert bo2.welcome["resumed"] is True and bo2.welcome["seq"] == s
            replay = [await bo2.recv() for _ in range(s - n)]
            assert [f["seq"] for f in replay] == list(range(n + 1, s + 1)) and replay[0] == away
            assert [f.get("text") for f in replay[1:]] == ["missed 0", "missed 1", "missed 2"]
            online = await bo2.recv()
            assert online["type"] == "presence" and online["status"] == "online" and online["seq"] == s + 1
            assert (await ann.next("presence", member=bo.member_id, status="online"))["seq"] == s + 1
            # the welcome's room is the state at S: Bo away, and the replay's last event brought it there
            assert [m["online"] for m in bo2.welcome["room"]["members"]] == [True, False]

            # without the memory log the replay comes from the database, the same
            await bo2.close()
            await ann.next("presence", member=bo.member_id, status="away")
            await ann.send({"type": "chat", "text": "from the db"})
            await ann.next("chat", text="from the db")
            await asyncio.sleep(0.3)  # stored (write-behind)
            room_server.rooms.rooms[room["room_id"]].log.clear()
            bo3 = await Client.open(room_server, room["room_id"], tokens[1], since=n)
            replay3 = [await bo3.recv() for _ in range(ann.seq - n)]
            assert [json.dumps(f) for f in replay3[: s - n]] == [json.dumps(f) for f in replay]
            assert replay3[-1]["text"] == "from the db"
            await bo3.next("presence", member=bo.member_id, status="online")
            # a `since` at or past the welcome's seq replays nothing
            bo4 = await Client.open(room_server, room["room_id"], tokens[1], since=10_000)
            assert bo4.welcome["resumed"] is True
            assert (await bo3.closed()) == (4408, "replaced")
            await ann.send({"type": "chat", "text": "live"})
            assert (await bo4.recv())["text"] == "live"

    run(main())


def test_a_member_not_back_within_the_grace_times_out(room_server):
    async def main():
        async with httpx.AsyncClient(base_url=room_server.url) as http:
            room, (ann, bo), tokens = await members(room_server, http, "Ann", "Bo")
            await bo.close()
            t0 = time.monotonic()
            await ann.next("presence", member=bo.member_id, status="away")
            left = await ann.next("left", member=bo.member_id, timeout=GRACE_S + 3)
            assert left["reason"] == "timeout" and time.monotonic() - t0 >= GRACE_S - 0.2
            late = await Client.open(room_server, room["room_id"], tokens[1], welcome=False)
            assert await late.closed() == (4401, "bad_token")
            r = await http.get(f"/api/v1/rooms/{room['room_id']}", params={"token": tokens[1]})
            assert r.status_code == 401
            view = (await http.get(f"/api/v1/rooms/{room['room_id']}", params={"token": tokens[0]})).json()["room"]
            assert [m["name"] for m in view["members"]] == ["Ann"]

    run(main())


def test_a_second_socket_of_a_member_replaces_the_first(room_server):
    async def main():
        async with httpx.AsyncClient(base_url=room_server.url) as http:
            room, (ann, bo), tokens = await members(room_server, http, "Ann", "Bo")
            seq = ann.seq
            bo2 = await Client.open(room_server, room["room_id"], tokens[1])
            assert await bo.closed() == (4408, "replaced")
            await bo2.send({"type": "chat", "text": "moved tabs"})
            chat = await ann.next("chat")
            assert chat["seq"] == seq + 1  # no presence events for the swap
            assert bo2.welcome["seq"] == seq

    run(main())


def test_bad_tokens_and_rooms_close_the_socket_with_a_reason(room_server):
    async def main():
        async with httpx.AsyncClient(base_url=room_server.url) as http:
            room = await new_room(http, "Ann")
            rid = room["room_id"]
            for token, rid_, want in [("nope", rid, (4401, "bad_token")), ("", rid, (4401, "bad_token")),
                                      (room["invite_token"], rid, (4401, "bad_token")),
                                      (room["member_token"], "nosuchroom00", (4404, "no_room"))]:
                c = await Client.open(room_server, rid_, token, welcome=False)
                assert await c.closed() == want

    run(main())


def test_the_host_kicks_mutes_locks_hands_over_and_ends(room_server):
    async def main():
        async with httpx.AsyncClient(base_url=room_server.url) as http:
            room, (ann, bo, cy), tokens = await members(room_server, http, "Ann", "Bo", "Cy")
            rid = room["room_id"]
            await bo.send({"type": "lock", "on": True})
            assert (await bo.next("error"))["code"] == "forbidden"

            await ann.send({"type": "mute_chat", "on": True, "member": bo.member_id})
            muted = await bo.next("chat_muted")
            assert muted["on"] is True and muted["target"] == bo.member_id and muted["member"] == ann.member_id
            await bo.send({"type": "chat", "text": "let me talk"})
            assert (await bo.next("error"))["code"] == "chat_muted"
            await cy.send({"type": "chat", "text": "I can"})
            await ann.next("chat", text="I can")
            await ann.send({"type": "mute_chat", "on": True})
            assert (await cy.next("chat_muted", on=True, target=None))["member"] == ann.member_id
            await cy.send({"type": "chat", "text": "now?"})
            assert (await cy.next("error"))["code"] == "chat_muted"
            await ann.send({"type": "chat", "text": "host speaks"})
            await cy.next("chat", text="host speaks")
            await ann.send({"type": "mute_chat", "on": False})
            await ann.send({"type": "mute_chat", "on": False, "member": bo.member_id})
            await bo.next("chat_muted", on=False, target=bo.member_id)
            await bo.send({"type": "chat", "text": "free"})
            await ann.next("chat", text="free")

            await ann.send({"type": "lock", "on": True})
            assert (await bo.next("locked"))["on"] is True
            r = await http.post(f"/api/v1/rooms/{rid}/join", json={"invite_token": room["invite_token"],
                                                                   "display_name": "Di"})
            assert r.status_code == 423 and r.json()["error"] == "room_locked"
            await ann.send({"type": "lock", "on": False})
            await bo.next("locked", on=False)

            await ann.send({"type": "kick", "member": cy.member_id})
            left = await cy.next("left")
            assert left["member"] == cy.member_id and left["reason"] == "kicked" and left["by"] == ann.member_id
            assert await cy.closed() == (4403, "kicked")
            assert (await bo.next("left"))["reason"] == "kicked"
            again = await Client.open(room_server, rid, tokens[2], welcome=False)
            assert await again.closed() == (4401, "bad_token")

            await ann.send({"type": "hand_over", "member": bo.member_id})
            host = await ann.next("host")
            assert host["target"] == bo.member_id and host["member"] == ann.member_id
            await ann.send({"type": "lock", "on": True})
            assert (await ann.next("error"))["code"] == "forbidden"
            await bo.send({"type": "kick", "member": ann.member_id})
            assert (await ann.next("left", member=ann.member_id))["by"] == bo.member_id
            assert await ann.closed() == (4403, "kicked")

            # a member joins, then the host ends the room: every socket closes 4410
            di = await join(http, room, "Di")
            di_ws = await Client.open(room_server, rid, di["member_token"])
            await bo.send({"type": "end"})
            assert (await di_ws.next("ended"))["member"] == bo.member_id
            assert await di_ws.closed() == (4410, "room_ended")
            assert await bo.closed() == (4410, "room_ended")
            r = await http.post(f"/api/v1/rooms/{rid}/join", json={"invite_token": room["invite_token"],
                                                                   "display_name": "Ed"})
            assert r.status_code == 410 and r.json()["error"] == "room_ended"
            r = await http.get(f"/api/v1/rooms/{rid}", params={"token": di["member_token"]})
            assert r.status_code == 410 and r.json()["error"] == "room_ended"
            late = await Client.open(room_server, rid, di["member_token"], welcome=False)
            assert await late.closed() == (4410, "room_ended")

    run(main())


def test_the_host_leaving_hands_over_to_the_earliest_member(room_server):
    async def main():
        async with httpx.AsyncClient(base_url=room_server.url) as http:
            room, (ann, bo, cy), tokens = await members(room_server, http, "Ann", "Bo", "Cy")
            await ann.send({"type": "leave"})
            assert await ann.closed() == (1000, "left")
            left = await cy.next("left")
            assert left["reason"] == "left" and left["member"] == ann.member_id and left["new_host"] == bo.member_id
            await bo.send({"type": "lock", "on": True})  # Bo is the host now
            assert (await cy.next("locked"))["member"] == bo.member_id
            doc = (await http.get(f"/api/v1/rooms/{room['room_id']}", params={"token": tokens[2]})).json()
            assert doc["room"]["host"] == bo.member_id
            assert (await http.get(f"/api/v1/rooms/{room['room_id']}", params={"token": tokens[0]})).status_code == 401

    run(main())


def test_a_full_room_refuses_joins_until_someone_leaves(room_server):
    async def main():
        async with httpx.AsyncClient(base_url=room_server.url) as http:
            room, (ann, bo), _ = await members(room_server, http, "Ann", "Bo", max_members=2)
            r = await http.post(f"/api/v1/rooms/{room['room_id']}/join",
                                json={"invite_token": room["invite_token"], "display_name": "Cy"})
            assert r.status_code == 409 and r.json()["error"] == "room_full"
            await bo.send({"type": "leave"})
            await ann.next("left", member=bo.member_id)
            cy = await join(http, room, "Cy")
            assert cy["member_id"]

    run(main())


class FakeSession:
    """A try-on session whose frames are a flat picture (the stage needs only its stream)."""

    def __init__(self, session_id: str):
        from streaming.frame_source import FrameStats

        self.id, self.closed, self.status, self.touched = session_id, False, "ready", time.monotonic()
        self.frame_source = type("FS", (), {"stats": FrameStats()})()
        self.render_thread = concurrent.futures.ThreadPoolExecutor(1)
        self.picture = np.full((240, 320, 3), 90, np.uint8)

    def call_render(self, fn):
        return self.render_thread.submit(lambda: self.picture)


async def watch_stage(served, room_id: str, token: str):
    """A stage viewer: a receive-only video peer that also asks for a control channel."""
    from aiortc import RTCPeerConnection, RTCSessionDescription

    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    channel = pc.createDataChannel("control")
    got_track = asyncio.get_running_loop().create_future()
    pc.on("track", lambda t: got_track.done() or got_track.set_result(t))
    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        r = await http.post(f"/api/v1/rooms/{room_id}/stage/offer", params={"token": token},
                            json={"sdp": pc.localDescription.sdp, "type": pc.localDescription.type})
    assert r.status_code == 200, r.text
    await pc.setRemoteDescription(RTCSessionDescription(**r.json()))
    track = await asyncio.wait_for(got_track, 15)
    return pc, channel, track


def test_the_stage_shows_the_look_but_never_the_session_id(room_server):
    tryon = room_server.app.state.tryon
    session = FakeSession(SID)
    with tryon.registry._lock:
        tryon.registry._sessions[SID] = session

    async def main():
        async with httpx.AsyncClient(base_url=room_server.url) as http:
            room, (ann, bo), tokens = await members(room_server, http, "Ann", "Bo")
            rid = room["room_id"]
            await bo.send({"type": "stage", "on": True, "session_id": "someone-elses"})
            assert (await bo.next("error"))["code"] == "not_your_session"
            await ann.send({"type": "stage", "on": True, "session_id": SID})
            stage = await bo.next("stage")
            # Ann's session is Ann's: Bo, who somehow learnt its id, cannot put it on stage as his
            await bo.send({"type": "stage", "on": True, "session_id": SID, "ref": "steal"})
            assert (await bo.next("error", ref="steal"))["code"] == "not_your_session"
            assert stage == {"type": "stage", "member": ann.member_id, "on": True, "at": stage["at"],
                             "room_id": rid, "seq": stage["seq"]}
            cy_j = await join(http, room, "Cy")
            cy = await Client.open(room_server, rid, cy_j["member_token"])
            assert cy.welcome["room"]["stage"] == ann.member_id
            assert [m["on_stage"] for m in cy.welcome["room"]["members"]] == [True, False, False]
            got = await http.get(f"/api/v1/rooms/{rid}", params={"token": tokens[1]})
            assert got.json()["room"]["stage"] == ann.member_id and SID not in got.text

            # Bo and Cy watch: one encoder for both, video only (the control channel is refused)
            watchers = [await watch_stage(room_server, rid, t) for t in (tokens[1], cy_j["member_token"])]
            for pc, channel, track in watchers:
                frame = await asyncio.wait_for(track.recv(), 15)
                image = frame.to_ndarray(format="rgb24")
                assert image.shape == (240, 320, 3) and abs(float(image[40:].mean()) - 90) < 12
            stream = tryon.streams[SID]
            assert len(stream.tracks) == 1 and stream.stats()["encode_once"] is True
            assert tryon.peer_count(SID) == 2
            deadline = time.monotonic() + 5  # the server takes the channel and closes it at once
            while any(channel.readyState != "closed" for _, channel, _ in watchers) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert [channel.readyState for _, channel, _ in watchers] == ["closed", "closed"]
            for pc, _, _ in watchers:
                await pc.close()

            await ann.send({"type": "stage", "on": False})
            assert (await cy.next("stage"))["on"] is False
            r = await http.post(f"/api/v1/rooms/{rid}/stage/offer", params={"token": tokens[1]},
                                json={"sdp": "v=0", "type": "offer"})
            assert r.status_code == 404 and r.json()["error"] == "no_stage"
            # stepped down, Ann's try-on is free for her next room (a new member id there)
            _, (ann2,), _ = await members(room_server, http, "Ann")
            await ann2.send({"type": "stage", "on": True, "session_id": SID})
            assert (await ann2.next("stage"))["member"] == ann2.member_id
            await ann2.close()
            await ann.send({"type": "chat", "text": "done"})
            for c in (ann, bo, cy):
                await c.next("chat", text="done")
                assert not any(SID in text for text in c.raw), "the session id reached a member"

    try:
        run(main(), timeout=60)
    finally:
        tryon.registry.close(session)


def test_a_slow_socket_is_dropped_and_does_not_hold_up_the_others():
    from streaming.room_hub import SEND_QUEUE_MAX, Conn

    class Socket:
        def __init__(self):
            self.sent, self.closed = [], None

        async def send_text(self, text):
            self.sent.append(text)

        async def close(self, code, reason):
            self.closed = (code, reason)

    class StuckSocket(Socket):
        async def send_text(self, text):
            await asyncio.Event().wait()  # uvicorn waits for a transport that never drains

    async def main():
        slow, fast = Conn(StuckSocket(), "slow"), Conn(Socket(), "fast")
        for c in (slow, fast):
            c.task = asyncio.ensure_future(c.run())
        slow.recv_task = asyncio.ensure_future(asyncio.Event().wait())  # the hub's receive loop
        for i in range(SEND_QUEUE_MAX + 5):
            for c in (slow, fast):
                c.push(f"frame {i}")
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        assert slow.closing == (1013, "too_slow") and fast.closing is None
        assert slow.task.cancelled() and slow.recv_task.cancelled() and not slow.queue
        slow.push("more")  # a dropped socket takes nothing more
        assert not slow.queue
        assert fast.ws.sent == [f"frame {i}" for i in range(SEND_QUEUE_MAX + 5)]
        fast.close(1000, "left")
        await asyncio.wait_for(fast.task, 2)
        assert fast.ws.closed == (1000, "left")

    run(main())


def test_a_room_survives_a_restart_of_the_server(tmp_path):
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    try:
        async def before():
            async with httpx.AsyncClient(base_url=server.url) as http:
                room, (ann, bo), tokens = await members(server.served(), http, "Ann", "Bo")
                await bo.send({"type": "trying", "product_id": 12, "size": "M", "colourway": "sand"})
                look = (await ann.next("trying"))["seq"]
                await ann.send({"type": "vote", "look": look, "value": 1})
                await bo.next("vote")
                n = bo.seq
                await bo.close()
                await ann.next("presence", member=bo.member_id, status="away")
                await ann.send({"type": "cart_add", "product_id": 12, "size": "M", "colourway": "sand", "qty": 1})
                await ann.next("cart_added")
                for i in range(3):
                    await ann.send({"type": "chat", "text": f"msg {i}"})
                await ann.next("chat", text="msg 2")
                doc = (await http.get(f"/api/v1/rooms/{room['room_id']}", params={"token": tokens[0]})).json()
                return room, tokens, n, ann.seq, doc, sequenced(ann)

        room, tokens, n, s, doc, ann_texts = run(before())
        assert server.interrupt() == 0  # Ctrl-C: uvicorn's graceful shutdown, then the app's lifespan
        server = ServerProcess(data, FITROOM_ROOM_GRACE_S="2").start()

        async def after():
            async with httpx.AsyncClient(base_url=server.url) as http:
                again = (await http.get(f"/api/v1/rooms/{room['room_id']}", params={"token": tokens[0]})).json()
                assert again["seq"] >= s
                v0, v1 = doc["room"], again["room"]
                for key in ("name", "host", "cart", "votes", "product_ids", "locked", "stage"):
                    assert v1[key] == v0[key], key
                assert [{**m, "online": None} for m in v1["members"]] == [{**m, "online": None} for m in v0["members"]]
                assert [m["online"] for m in v1["members"]] == [False, False]  # away until they come back
                bo = await Client.open(server.served(), room["room_id"], tokens[1], since=n)
                replay = [await bo.recv() for _ in range(bo.welcome["seq"] - n)]
                texts = sequenced(bo)
                assert [f["seq"] for f in replay] == list(range(n + 1, bo.welcome["seq"] + 1))
                for seq in range(n + 1, s + 1):
                    assert texts[seq] == ann_texts[seq]  # the very events members saw before
                assert [f["text"] for f in replay if f["type"] == "chat"] == ["msg 0", "msg 1", "msg 2"]
                assert (await bo.next("presence", member=bo.member_id, status="online"))["seq"] == again["seq"] + 1
                await bo.send({"type": "chat", "text": "back"})
                assert (await bo.next("chat", text="back"))["seq"] == again["seq"] + 2
                # Ann never came back: her grace ran from the room's loading
                gone = await bo.next("left", timeout=6)
                assert gone["member"] == doc["member_id"] and gone["reason"] == "timeout"
                assert gone["new_host"] == bo.member_id

        run(after())
        assert server.interrupt() == 0
    finally:
        server.kill()


def test_rtc_crosses_server_processes_to_its_member_only(tmp_path, redis_url):
    """Two `fitroom serve` processes sharing Redis: Ann and Dee on the first, Bo and Cy on the second.
    Ann's `rtc` to Bo reaches Bo (every process gets the broker's signal; only Bo's delivers it), and
    neither Cy (beside Bo) nor Dee (beside Ann) sees it; Bo's answer comes back the same way."""
    data = tmp_path / "data"
    one = ServerProcess(data, FITROOM_REDIS_URL=redis_url).start()
    two = None
    try:
        two = ServerProcess(data, FITROOM_REDIS_URL=redis_url).start()

        async def main():
            async with httpx.AsyncClient(base_url=one.url) as http:
                room = await new_room(http, "Ann")
                rid = room["room_id"]
                ann = await Client.open(one.served(), rid, room["member_token"])
                clients = {"Ann": ann}
                for name, server in (("Bo", two), ("Cy", two), ("Dee", one)):
                    j = await join(http, room, name)
                    clients[name] = await Client.open(server.served(), rid, j["member_token"])
                for c in clients.values():
                    await c.next("presence", member=clients["Dee"].member_id, status="online", timeout=10)
                bo, cy, dee = clients["Bo"], clients["Cy"], clients["Dee"]
                offer = {"type": "offer", "sdp": CHROMIUM_AUDIO_OFFER}
                await ann.send({"type": "rtc", "to": bo.member_id, "sdp": offer})
                got = await bo.next("rtc", timeout=10)
                assert (got["member"], got["to"], got["sdp"]) == (ann.member_id, bo.member_id, offer)
                await bo.send({"type": "rtc", "to": ann.member_id, "candidate": None})
                back = await ann.next("rtc", timeout=10)
                assert back["member"] == bo.member_id and back["candidate"] is None
                await dee.send({"type": "voice", "on": True, "to": cy.member_id})
                assert (await cy.next("voice", timeout=10))["member"] == dee.member_id
                await ann.send({"type": "chat", "text": "after"})
                for c in clients.values():
                    await c.next("chat", text="after", timeout=10)
                assert not [f for c in (cy, dee) for f in c.frames if f["type"] == "rtc"]
                assert not [f for c in (ann, bo) for f in c.frames if f["type"] == "voice"]
                assert [f["type"] for f in bo.frames if f["type"] == "rtc"] == ["rtc"]

        run(main(), timeout=60)
    finally:
        for server in (two, one):
            if server is not None:
                server.kill()
