"""The Broker contract of `InProcessBroker` (the Redis one has tests/streaming/test_room_broker_redis.py)."""

from __future__ import annotations

import asyncio

from streaming.room_broker import LOG_KEEP, Broker, InProcessBroker, make_broker


def run(coro):
    return asyncio.run(coro)


def test_make_broker_is_in_process_without_a_url_and_redis_with_one():
    broker = make_broker(None)
    assert isinstance(broker, InProcessBroker) and isinstance(broker, Broker)
    assert isinstance(make_broker(""), InProcessBroker)
    from streaming.room_broker_redis import RedisBroker

    redis_broker = make_broker("redis://127.0.0.1:1/0")  # not started: nothing connects yet
    assert isinstance(redis_broker, RedisBroker) and isinstance(redis_broker, Broker)


def test_publish_numbers_each_room_and_delivers_in_order_before_returning():
    async def main():
        b = InProcessBroker()
        await b.start()
        got_a, got_b = [], []
        await b.subscribe("a", got_a.append)
        await b.subscribe("b", got_b.append)
        first = await b.publish("a", {"type": "chat", "text": "1"})
        assert first["seq"] == 1 and got_a == [first]  # delivered before publish returned
        for i in range(2, 6):
            await b.publish("a", {"type": "chat", "text": str(i)})
        await b.publish("b", {"type": "chat", "text": "x"})
        assert [e["seq"] for e in got_a] == [1, 2, 3, 4, 5]
        assert [e["text"] for e in got_a] == ["1", "2", "3", "4", "5"]
        assert [e["seq"] for e in got_b] == [1]
        assert await b.last_seq("a") == 5 and await b.last_seq("b") == 1 and await b.last_seq("c") is None
        body = {"type": "chat"}
        await b.publish("a", body)
        assert "seq" not in body  # the caller's dict is not changed
        await b.close()

    run(main())


def test_signals_have_no_seq_and_are_not_logged():
    async def main():
        b = InProcessBroker()
        got = []
        await b.subscribe("r", got.append)
        await b.publish("r", {"type": "chat"})
        await b.signal("r", {"type": "pointer", "seq": None, "x": 0.5})
        await b.publish("r", {"type": "chat"})
        assert [e.get("seq") for e in got] == [1, None, 2]
        assert [e["seq"] for e in await b.recent("r", 0)] == [1, 2]
        assert await b.last_seq("r") == 2

    run(main())


def test_recent_reaches_back_to_the_log_limit_then_says_none():
    async def main():
        b = InProcessBroker(log_keep=10)
        for _ in range(25):
            await b.publish("r", {"type": "chat"})
        assert [e["seq"] for e in await b.recent("r", 20)] == [21, 22, 23, 24, 25]
        assert [e["seq"] for e in await b.recent("r", 15)] == list(range(16, 26))
        assert await b.recent("r", 14) is None  # seq 15 is no longer logged
        assert await b.recent("r", 25) == [] and await b.recent("r", 99) == []
        assert await b.recent("nobody", 0) == []
        assert LOG_KEEP == InProcessBroker().log_keep == 2000

    run(main())


def test_init_seq_starts_the_counter_unless_it_is_larger():
    async def main():
        b = InProcessBroker()
        await b.init_seq("r", 41)
        assert await b.last_seq("r") == 41
        assert (await b.publish("r", {"type": "chat"}))["seq"] == 42
        await b.init_seq("r", 10)  # smaller: kept at 42
        assert (await b.publish("r", {"type": "chat"}))["seq"] == 43
        assert [e["seq"] for e in await b.recent("r", 41)] == [42, 43]
        assert await b.recent("r", 40) is None  # 41 and before are the database's
        await b.init_seq("r", 100)
        assert await b.recent("r", 43) is None and await b.recent("r", 100) == []
        assert (await b.publish("r", {"type": "chat"}))["seq"] == 101

    run(main())


def test_unsubscribe_and_a_failing_subscriber_spares_the_others(caplog):
    async def main():
        b = InProcessBroker()
        got, other = [], []

        def broken(event):
            raise RuntimeError("subscriber bug")

        await b.subscribe("r", broken)
        await b.subscribe("r", got.append)
        await b.subscribe("r", got.append)  # twice: still one subscription
        await b.subscribe("r", other.append)
        await b.publish("r", {"type": "chat"})
        assert len(got) == 1 and len(other) == 1
        await b.unsubscribe("r", other.append)
        await b.unsubscribe("r", other.append)  # again: nothing
        await b.publish("r", {"type": "chat"})
        assert [e["seq"] for e in got] == [1, 2] and len(other) == 1

    run(main())
    assert "subscriber bug" in caplog.text
