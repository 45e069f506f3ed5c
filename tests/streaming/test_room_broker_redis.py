"""The Broker contract of `RedisBroker` against a real Redis server (tests/redis_server.py).

Two `RedisBroker` instances stand for two server processes sharing one Redis. Every test uses its
own random room ids, so a shared server (FITROOM_TEST_REDIS_URL) is fine; keys expire in minutes.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time

import pytest
import redis

from streaming.room_broker import LOG_KEEP, Broker, make_broker
from streaming.room_broker_redis import RedisBroker, room_keys

TTL = 300  # the tests' keys expire after five minutes


def new_room() -> str:
    return "t" + secrets.token_urlsafe(9)


class Collector:
    """A subscriber that keeps what it receives."""

    def __init__(self):
        self.events: list[dict] = []

    def __call__(self, event: dict) -> None:
        self.events.append(event)

    @property
    def seqs(self) -> list[int]:
        return [e["seq"] for e in self.events if e["seq"] is not None]

    async def wait_seq(self, seq: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not (self.seqs and self.seqs[-1] >= seq):
            assert time.monotonic() < deadline, f"saw {self.seqs[-5:]}, waited for seq {seq}"
            await asyncio.sleep(0.005)


async def brokers(url: str, n: int = 1, **kw) -> list[RedisBroker]:
    out = []
    for _ in range(n):
        b = RedisBroker(url, key_ttl_s=TTL, **kw)
        await b.start()
        out.append(b)
    return out


async def close_all(bs) -> None:
    for b in bs:
        await b.close()


def test_make_broker_gives_redis_broker_with_the_shared_log_size(redis_url):
    b = make_broker(redis_url)
    assert isinstance(b, RedisBroker) and isinstance(b, Broker)
    assert b.url == redis_url and b.log_keep == LOG_KEEP == 2000


def test_two_processes_publishing_concurrently_give_one_gapless_order(redis_url):
    """200 events from each of two brokers at once: seqs 1..400, both subscribers see the identical
    sequence, each publisher's events in its own order, every returned seq matching delivery."""

    async def scenario():
        a, b = await brokers(redis_url, 2)
        room = new_room()
        got_a, got_b = Collector(), Collector()
        await a.subscribe(room, got_a)
        await b.subscribe(room, got_b)

        async def send(broker, origin):
            returned = []
            for i in range(200):
                ev = await broker.publish(room, {"type": "chat", "room_id": room, "member": origin, "text": f"{origin}-{i}"})
                returned.append(ev)
            return returned

        ret_a, ret_b = await asyncio.gather(send(a, "A"), send(b, "B"))
        await got_a.wait_seq(400)
        await got_b.wait_seq(400)
        await asyncio.sleep(0.05)  # nothing more arrives
        await close_all([a, b])
        return ret_a, ret_b, got_a, got_b

    ret_a, ret_b, got_a, got_b = asyncio.run(scenario())
    assert got_a.seqs == list(range(1, 401))
    assert got_a.events == got_b.events  # identical sequence, identical contents
    by_seq = {e["seq"]: e for e in got_a.events}
    for origin, returned in (("A", ret_a), ("B", ret_b)):
        assert [e["text"] for e in returned] == [f"{origin}-{i}" for i in range(200)]
        seqs = [e["seq"] for e in returned]
        assert seqs == sorted(seqs)  # one publisher's events keep its order
        for e in returned:
            assert by_seq[e["seq"]] == e  # what publish returned is what everyone received
    assert {e["member"] for e in got_a.events[:50]} == {"A", "B"}  # really interleaved
    assert sum(e["member"] == "A" for e in got_a.events) == 200


def test_recent_last_seq_and_the_log_limit(redis_url):
    async def scenario():
        (b,) = await brokers(redis_url, log_keep=10)
        room = new_room()
        out = {"before": (await b.last_seq(room), await b.recent(room, 0))}
        for i in range(1, 6):
            await b.publish(room, {"type": "chat", "text": f"m{i}"})
        out["last5"] = await b.last_seq(room)
        out["after2"] = await b.recent(room, 2)
        out["after5"] = await b.recent(room, 5)
        out["after9"] = await b.recent(room, 9)
        for i in range(6, 16):
            await b.publish(room, {"type": "chat", "text": f"m{i}"})
        out["after0"] = await b.recent(room, 0)
        out["after4"] = await b.recent(room, 4)
        out["after5b"] = await b.recent(room, 5)
        out["llen"] = redis.Redis.from_url(redis_url).llen(room_keys(room)[1])
        await b.close()
        return out

    out = asyncio.run(scenario())
    assert out["before"] == (None, [])
    assert out["last5"] == 5
    assert [(e["seq"], e["text"]) for e in out["after2"]] == [(3, "m3"), (4, "m4"), (5, "m5")]
    assert out["after5"] == [] and out["after9"] == []
    assert out["llen"] == 10  # trimmed to log_keep
    assert out["after0"] is None and out["after4"] is None  # the log no longer reaches back
    assert [e["seq"] for e in out["after5b"]] == list(range(6, 16))
    assert out["after5b"][-1] == {"seq": 15, "type": "chat", "text": "m15"}


def test_keys_get_a_ttl_and_the_event_json_starts_with_its_seq(redis_url):
    async def scenario():
        (b,) = await brokers(redis_url)
        room = new_room()
        await b.publish(room, {"type": "chat", "seq": None, "text": "hi"})  # a seq given is replaced
        await b.close()
        return room

    room = asyncio.run(scenario())
    r = redis.Redis.from_url(redis_url)
    counter, log_key, _ = room_keys(room)
    assert counter == f"fitroom:room:{{{room}}}:seq"
    assert 0 < r.ttl(counter) <= TTL and 0 < r.ttl(log_key) <= TTL
    assert r.lrange(log_key, 0, -1) == [b'{"seq":1,"type":"chat","text":"hi"}']


def test_init_seq_keeps_a_larger_counter(redis_url):
    async def scenario():
        (b,) = await brokers(redis_url)
        room = new_room()
        got = Collector()
        await b.subscribe(room, got)
        await b.init_seq(room, 10)
        out = {"after_init": await b.last_seq(room), "recent10": await b.recent(room, 10),
               "recent3": await b.recent(room, 3)}
        out["first"] = (await b.publish(room, {"type": "chat", "text": "a"}))["seq"]
        await b.init_seq(room, 5)  # smaller: kept at 11, log kept
        out["after_smaller"] = await b.last_seq(room)
        out["log_kept"] = [e["seq"] for e in await b.recent(room, 10)]
        await b.init_seq(room, 11)  # equal: kept
        out["after_equal"] = (await b.last_seq(room), [e["seq"] for e in await b.recent(room, 10)])
        await b.init_seq(room, 40)  # larger: raised, and the old log no longer joins up
        out["after_larger"] = (await b.last_seq(room), await b.recent(room, 11), await b.recent(room, 40))
        out["next"] = (await b.publish(room, {"type": "chat", "text": "b"}))["seq"]
        await got.wait_seq(41)
        out["delivered"] = got.seqs
        out["filled"] = b.gaps_filled
        await b.close()
        return out

    out = asyncio.run(scenario())
    assert out["after_init"] == 10
    assert out["recent10"] == [] and out["recent3"] is None
    assert out["first"] == 11
    assert out["after_smaller"] == 11 and out["log_kept"] == [11]
    assert out["after_equal"] == (11, [11])
    assert out["after_larger"] == (40, None, [])
    assert out["next"] == 41
    # the subscriber saw 11, then 41 with no gap complaint: init_seq told it 12..40 are the database's
    assert out["delivered"] == [11, 41] and out["filled"] == 0


def _publish_without_pubsub(url: str, room: str, text: str) -> int:
    """What a lost pub/sub message looks like: counted and logged, never published."""
    r = redis.Redis.from_url(url)
    counter, log_key, _ = room_keys(room)
    seq = r.incr(counter)
    r.rpush(log_key, f'{{"seq":{seq},"type":"chat","text":{json.dumps(text)}}}')
    r.expire(counter, TTL)
    r.expire(log_key, TTL)
    return seq


def test_a_gap_is_filled_from_the_log_and_duplicates_are_dropped(redis_url):
    async def scenario():
        a, b = await brokers(redis_url, 2)
        room = new_room()
        got = Collector()
        await a.subscribe(room, got)
        await b.publish(room, {"type": "chat", "text": "one"})
        await got.wait_seq(1)
        assert _publish_without_pubsub(redis_url, room, "two (lost)") == 2
        assert _publish_without_pubsub(redis_url, room, "three (lost)") == 3
        await asyncio.sleep(0.05)
        before = list(got.seqs)
        await b.publish(room, {"type": "chat", "text": "four"})
        await got.wait_seq(4)
        # a duplicate on the channel (seq 2 again) is dropped
        r = redis.Redis.from_url(redis_url)
        r.publish(room_keys(room)[2], r.lindex(room_keys(room)[1], 1))
        await b.publish(room, {"type": "chat", "text": "five"})
        await got.wait_seq(5)
        await asyncio.sleep(0.05)
        filled = a.gaps_filled
        await close_all([a, b])
        return before, got, filled

    before, got, filled = asyncio.run(scenario())
    assert before == [1]  # nothing delivered until the gap shows
    assert [(e["seq"], e["text"]) for e in got.events] == [
        (1, "one"), (2, "two (lost)"), (3, "three (lost)"), (4, "four"), (5, "five")]
    assert filled == 3  # 2 and 3 were missing; 4 came from the log read too


def test_signals_are_ephemeral_and_never_count_as_gaps(redis_url):
    async def scenario():
        a, b = await brokers(redis_url, 2)
        room = new_room()
        got = Collector()
        await a.subscribe(room, got)
        await b.publish(room, {"type": "chat", "text": "x"})
        await got.wait_seq(1)
        await b.signal(room, {"type": "typing", "member": "m1", "on": True})
        await b.signal(room, {"type": "pointer", "member": "m1", "x": 0.25, "y": 0.5, "seq": 99})
        await b.publish(room, {"type": "chat", "text": "y"})
        await got.wait_seq(2)
        out = (list(got.events), await b.recent(room, 0), await b.last_seq(room), a.gaps_filled)
        await close_all([a, b])
        return out

    events, logged, last, filled = asyncio.run(scenario())
    assert [(e["type"], e["seq"]) for e in events] == [("chat", 1), ("typing", None), ("pointer", None), ("chat", 2)]
    assert events[1] == {"seq": None, "type": "typing", "member": "m1", "on": True}
    assert events[2]["x"] == 0.25 and events[2]["seq"] is None  # a seq in a signal is overridden
    assert [e["type"] for e in logged] == ["chat", "chat"] and last == 2
    assert filled == 0


UNICODE_TEXTS = [
    "héllo wörld ✓",
    "👍❤️😍🔥😂🤔👎 family: 👨‍👩‍👧‍👦",
    "中文字符 日本語 한국어",
    "עברית العربية",
    'quotes " and \\ backslash and {"seq":7,} in text',
    "line\nbreak\ttab \u2028 \u0000 nul",
    "{",
]


def test_unicode_payloads_round_trip(redis_url):
    async def scenario():
        a, b = await brokers(redis_url, 2)
        room = new_room()
        got = Collector()
        await a.subscribe(room, got)
        sent = []
        for i, text in enumerate(UNICODE_TEXTS):
            sent.append(await b.publish(room, {"type": "chat", "member": "ü😀", "text": text, "n": i, "nested": {"k": [text]}}))
        await b.signal(room, {"type": "typing", "member": "ü😀", "name": "Zoë 🧥"})
        await got.wait_seq(len(UNICODE_TEXTS))
        await asyncio.sleep(0.05)
        logged = await b.recent(room, 0)
        await close_all([a, b])
        return sent, got.events, logged

    sent, received, logged = asyncio.run(scenario())
    sequenced = [e for e in received if e["seq"] is not None]
    assert sequenced == sent == logged
    assert [e["text"] for e in sequenced] == UNICODE_TEXTS
    assert [e["nested"]["k"][0] for e in logged] == UNICODE_TEXTS
    assert [e for e in received if e["seq"] is None] == [{"seq": None, "type": "typing", "member": "ü😀", "name": "Zoë 🧥"}]


def test_unsubscribe_stops_delivery_and_subscribe_again_starts_after_the_counter(redis_url):
    async def scenario():
        a, b = await brokers(redis_url, 2)
        room = new_room()
        first, second = Collector(), Collector()
        await a.subscribe(room, first)
        await a.subscribe(room, first)  # twice: still delivered once
        await b.publish(room, {"type": "chat", "text": "1"})
        await first.wait_seq(1)
        await a.unsubscribe(room, first)
        await b.publish(room, {"type": "chat", "text": "2"})
        await asyncio.sleep(0.1)
        await a.subscribe(room, second)
        await b.publish(room, {"type": "chat", "text": "3"})
        await second.wait_seq(3)
        await asyncio.sleep(0.05)
        await close_all([a, b])
        return first.seqs, second.seqs

    first, second = asyncio.run(scenario())
    assert first == [1]
    assert second == [3]  # a new subscription starts after the counter it found (2)


def test_many_rooms_on_one_connection_keep_their_own_order(redis_url):
    async def scenario():
        a, b = await brokers(redis_url, 2)
        rooms = [new_room() for _ in range(20)]
        got = {r: Collector() for r in rooms}
        for r in rooms:
            await a.subscribe(r, got[r])
        await asyncio.gather(*(b.publish(r, {"type": "chat", "text": f"{r}:{i}"}) for i in range(10) for r in rooms))
        for r in rooms:
            await got[r].wait_seq(10)
        await close_all([a, b])
        return rooms, got

    rooms, got = asyncio.run(scenario())
    for r in rooms:
        assert got[r].seqs == list(range(1, 11))
        assert all(e["text"].startswith(r + ":") for e in got[r].events)


def test_a_dropped_pubsub_connection_reconnects_and_fills_from_the_log(private_redis):
    url = private_redis.url

    async def scenario():
        a, b = await brokers(url, 2)
        room = new_room()
        got = Collector()
        await a.subscribe(room, got)
        await b.publish(room, {"type": "chat", "text": "before"})
        await got.wait_seq(1)
        r = redis.Redis.from_url(url)
        assert r.client_kill_filter(_type="pubsub") >= 2  # both brokers' pub/sub connections
        for i in range(5):  # while A is away (it waits 0.1 s before reconnecting)
            await b.publish(room, {"type": "chat", "text": f"away {i}"})
        await got.wait_seq(6)
        await b.publish(room, {"type": "chat", "text": "after"})
        await got.wait_seq(7)
        out = (got.seqs, [e["text"] for e in got.events], a.reconnects, a.gaps_filled)
        await close_all([a, b])
        return out

    seqs, texts, reconnects, filled = asyncio.run(scenario())
    assert seqs == list(range(1, 8))
    assert texts == ["before"] + [f"away {i}" for i in range(5)] + ["after"]
    assert reconnects == 1
    assert filled >= 5  # the five published while away came from the log


def test_a_restarted_redis_server_is_reconnected_with_backoff(private_redis):
    """Redis goes away for a second (losing its data: no persistence): the broker keeps trying,
    subscribes again, and the hub's init_seq from its database restores the counter."""

    async def scenario():
        a, b = await brokers(private_redis.url, 2)
        room = new_room()
        got = Collector()
        await a.subscribe(room, got)
        await b.publish(room, {"type": "chat", "text": "1"})
        await b.publish(room, {"type": "chat", "text": "2"})
        await got.wait_seq(2)
        private_redis.stop()
        await asyncio.sleep(1.0)
        private_redis.start()
        deadline = time.monotonic() + 10
        while a.reconnects < 1 or b.reconnects < 1:
            assert time.monotonic() < deadline, "the brokers did not reconnect"
            await asyncio.sleep(0.05)
        await b.init_seq(room, 2)  # what the hub does with the seq it stored
        third = await b.publish(room, {"type": "chat", "text": "3"})
        await got.wait_seq(3)
        out = (got.seqs, third["seq"])
        await close_all([a, b])
        return out

    seqs, third = asyncio.run(scenario())
    assert seqs == [1, 2, 3] and third == 3


def test_start_fails_plainly_without_a_server():
    from fitroom.errors import FitroomError
    from tests.local_server import free_port

    async def scenario():
        await RedisBroker(f"redis://:secret@127.0.0.1:{free_port()}/0").start()

    with pytest.raises(FitroomError) as e:
        asyncio.run(scenario())
    assert e.value.code == "redis_unavailable"
    assert "secret" not in e.value.message and "***" in e.value.message


def test_a_retried_publish_is_not_published_twice(redis_url):
    """redis-py retries a command whose connection dropped; the script remembers the publish id."""

    async def scenario():
        (b,) = await brokers(redis_url)
        room = new_room()
        counter, log_key, channel = room_keys(room)
        args = ("event", counter, log_key, channel, f"fitroom:room:{{{room}}}:pub:same-id",
                '{"type":"chat","text":"once"}', 10, TTL, 60)
        first, again = await b._publish_batch([args, args])  # the same publish twice
        other = await b.publish(room, {"type": "chat", "text": "next"})
        out = (first, again, other["seq"], await b.recent(room, 0))
        await b.close()
        return out

    first, again, other, logged = asyncio.run(scenario())
    assert (first, again, other) == (1, 1, 2)
    assert [(e["seq"], e["text"]) for e in logged] == [(1, "once"), (2, "next")]


def test_a_failing_handler_spares_the_others_and_the_callers_dict_is_kept(redis_url, caplog):
    async def main():
        (b,) = await brokers(redis_url)
        room = new_room()
        got = Collector()

        def broken(event):
            raise RuntimeError("subscriber bug")

        await b.subscribe(room, broken)
        await b.subscribe(room, got)
        body = {"type": "chat", "text": "x"}
        returned = await b.publish(room, body)
        await got.wait_seq(1)
        await b.close()
        return body, returned, got.events

    body, returned, events = asyncio.run(main())
    assert body == {"type": "chat", "text": "x"}  # no seq added to the caller's dict
    assert returned == events[0] == {"seq": 1, "type": "chat", "text": "x"}
    assert "subscriber bug" in caplog.text


def test_a_publish_cancelled_before_it_goes_out_is_not_published(redis_url):
    async def main():
        (b,) = await brokers(redis_url)
        room = new_room()
        task = asyncio.create_task(b.publish(room, {"type": "chat", "text": "never"}))
        await asyncio.sleep(0)  # queued, not yet sent: the publisher task runs after this one
        task.cancel()
        kept = await b.publish(room, {"type": "chat", "text": "kept"})
        out = (task.cancelled(), kept["seq"], await b.recent(room, 0))
        await b.close()
        return out

    cancelled, seq, logged = asyncio.run(main())
    assert cancelled and seq == 1
    assert [e["text"] for e in logged] == ["kept"]


def test_a_stopped_process_members_are_taken_over_by_exactly_one_survivor(redis_url):
    """a holds ann and bo; while a runs nobody may take them. When a stops (close() deletes its
    heartbeat key, as its TTL running out would), b and c race for them: each member goes to one."""

    async def scenario():
        a, b, c = await brokers(redis_url, 3)
        room, other = new_room(), new_room()
        await a.hold(room, "ann")
        await a.hold(room, "bo")
        await b.hold(other, "cy")
        await b.hold(room, "dee")
        asked = {room: ["ann", "bo", "dee", "nobody"], other: ["cy"]}
        while_running = [await b.orphans(asked), await c.orphans(asked)]
        await a.close()
        won = await asyncio.gather(b.orphans(asked), c.orphans(asked))
        again = [await b.orphans(asked), await c.orphans(asked)]
        key = f"fitroom:room:{{{room}}}:held"
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        held = client.hgetall(key)
        await c.release(room, "dee")  # b's hold: kept
        kept = client.hget(key, "dee")
        await b.release(room, "dee")
        after = sorted(client.hgetall(key))
        await close_all([b, c])
        return while_running, won, again, held, kept, after, (b.proc, c.proc)

    while_running, won, again, held, kept, after, procs = asyncio.run(scenario())
    assert while_running == [{}, {}]
    room = next(k for w in won for k in w)
    assert all(set(w) == {room} for w in won if w)  # nothing of the other room (its holder runs)
    assert sorted(m for w in won for m in w.get(room, [])) == ["ann", "bo"]  # each by one survivor
    assert again == [{}, {}]
    assert held["dee"] == procs[0] and {held["ann"], held["bo"]} <= set(procs)
    assert kept == procs[0] and after == ["ann", "bo"]
