"""`RedisBroker`: room events between server processes through Redis (`FITROOM_REDIS_URL`).

The `Broker` protocol of `streaming/room_broker.py` (docs/rooms.md, "Interfaces between the
modules") over `redis.asyncio`. Keys, for a room `R` (the braces are a Redis Cluster hash tag, so a
room's keys share one slot and one script may touch them all):

    fitroom:room:{R}:seq    the room's counter (INCR)
    fitroom:room:{R}:log    the last LOG_KEEP sequenced events, JSON text, oldest first
    fitroom:room:{R}        the pub/sub channel: sequenced events and ephemeral signals
    fitroom:room:{R}:held   member id -> id of the process that answers for their presence
    fitroom:proc:P          exists while process P runs (a heartbeat every HEARTBEAT_S, TTL PROC_TTL_S)

Publishing is one Lua script: INCR the counter, splice `"seq":N,` into the event's JSON right after
its opening brace, RPUSH it to the log, LTRIM the log, refresh a TTL on both keys, PUBLISH it.
Redis runs a script atomically, so seq order is publish order and every subscriber of the channel
receives the events in seq order. A publish carries a random id that the script remembers for a
minute, so a retry after a dropped connection (redis-py retries on connection errors) returns the
first seq instead of publishing the event twice. One publisher task sends the process's publishes
in order, one pipeline per round trip: under load the batches grow, not the connections.

Each process holds one pub/sub connection. A reader task takes its messages off the socket and
queues them; one dispatcher task parses each once and calls the handlers of its room in order:

- a sequenced event with `seq <= last` is a duplicate and is dropped;
- `seq > last + 1` is a gap: the missing events are read from the log before this one is delivered;
- ephemeral events (`"seq": null`) are delivered as they come and never count in gap detection.

A new subscription starts after the counter's value read once Redis has confirmed the SUBSCRIBE:
every later event reaches the handler. If the pub/sub connection drops, the reader logs it,
reconnects with backoff (0.1 s doubling to 5 s), subscribes every room again and, as each room's
subscription is confirmed, delivers what it missed from the log before any live event. Events older
than the log (more than LOG_KEEP while disconnected) cannot be recovered; that is logged as an
error and delivery goes on from what the log holds.

Presence across processes: the process that holds a member's socket, or runs their grace timer,
writes itself into the room's `held` hash. `orphans` finds members held by a process whose
heartbeat key has expired (killed, or cut off from Redis for PROC_TTL_S) or was deleted by its
`close()`, and moves each to the caller with a compare-and-set script, so exactly one survivor
takes each over. The heartbeat keys lie outside the room's hash slot, so they are read by plain
commands before the script, which touches the room's key only.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import math
import os
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import NoScriptError

from streaming.room_broker import LOG_KEEP

log = logging.getLogger("fitroom.rooms.redis")

KEY_TTL_S = 7 * 24 * 3600  # counters and logs of rooms nobody publishes to expire after a week
PUBLISH_ID_TTL_S = 60  # how long a publish id is remembered against retried publishes
SUBSCRIBE_WAIT_S = 10.0  # subscribe() waits this long for Redis to confirm before it returns anyway
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.1, 5.0
PUBLISH_BATCH_MAX = 256  # publishes sent in one pipeline at most
HEARTBEAT_S, PROC_TTL_S = 2.0, 6  # a process missing for PROC_TTL_S has stopped: its members are taken over

# KEYS: counter, log, channel, publish-id key.  ARGV: event JSON ("{...}"), LOG_KEEP, TTL, id TTL.
_PUBLISH = """
local done = redis.call('GET', KEYS[4])
if done then return tonumber(done) end
local seq = redis.call('INCR', KEYS[1])
local body = ARGV[1]
local event
if body == '{}' then
  event = '{"seq":' .. seq .. '}'
else
  event = '{"seq":' .. seq .. ',' .. string.sub(body, 2)
end
redis.call('RPUSH', KEYS[2], event)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[4], seq, 'EX', ARGV[4])
redis.call('PUBLISH', KEYS[3], event)
return seq
"""

# KEYS: counter, log.  ARGV: seq, TTL.  The counter becomes ARGV[1] unless it is already larger.
# A counter that is raised (or made) drops the log: the log must hold consecutive seqs ending at
# the counter, and events below the new start are not in it.  Returns the counter.
_INIT_SEQ = """
local cur = redis.call('GET', KEYS[1])
local want = tonumber(ARGV[1])
if (not cur) or tonumber(cur) < want then
  redis.call('SET', KEYS[1], want, 'EX', ARGV[2])
  redis.call('DEL', KEYS[2])
  return want
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return tonumber(cur)
"""

# KEYS: counter, log.  ARGV: after_seq.  The logged events with seq > after_seq, or nil (None) when
# the log no longer reaches back that far.  The log holds consecutive seqs ending at its last entry,
# whose seq is read from its first characters ('{"seq":N,').
_RECENT = """
local after = tonumber(ARGV[1])
local n = redis.call('LLEN', KEYS[2])
if n == 0 then
  local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
  if after >= cur then return {} end
  return nil
end
local last = tonumber(string.match(redis.call('LINDEX', KEYS[2], -1), '^{"seq":(%d+)'))
if after >= last then return {} end
local first = last - n + 1
if after + 1 < first then return nil end
return redis.call('LRANGE', KEYS[2], after + 1 - first, -1)
"""


# KEYS: held hash.  ARGV: this process, then (member, the stopped process that held them) pairs.
# Each member still held by that process is moved to this one.  Returns the members moved.
_TAKE_OVER = """
local taken = {}
for i = 2, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
    taken[#taken + 1] = ARGV[i]
  end
end
return taken
"""

# KEYS: held hash.  ARGV: member, this process.  Drops the member's hold if it is this process's.
_RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""


def held_key(room_id: str) -> str:
    """The room's hash of member id -> holding process."""
    return room_keys(room_id)[2] + ":held"


def proc_key(proc: str) -> str:
    return f"fitroom:proc:{proc}"


def room_keys(room_id: str) -> tuple[str, str, str]:
    """(counter key, log key, channel) of a room."""
    base = f"fitroom:room:{{{room_id}}}"
    return base + ":seq", base + ":log", base


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def _dumps(event: dict) -> str:
    body = {k: v for k, v in event.items() if k != "seq"}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


class _Room:
    """One subscribed room in this process: its handlers, the last seq delivered to them, the events
    held back until the subscription's starting point is known, and who waits for that."""

    __slots__ = ("room_id", "channel", "handlers", "last", "held", "ready")

    def __init__(self, room_id: str, channel: str):
        self.room_id, self.channel = room_id, channel
        self.handlers: list[Callable[[dict], None]] = []
        self.last: int | None = None  # None until the SUBSCRIBE is confirmed and the counter read
        self.held: list[dict] = []
        self.ready = asyncio.get_running_loop().create_future()


class RedisBroker:
    """The Broker protocol over Redis: seq numbers, the recent log and delivery across processes.

    `url`: a redis:// (or rediss://, unix://) URL. `start()` before use, `close()` at the end.
    Handlers run on the event loop, in the dispatcher task; they must not block and must not change
    the event dict (every handler of the room in this process gets the same one).
    """

    def __init__(self, url: str, *, log_keep: int = LOG_KEEP, key_ttl_s: int = KEY_TTL_S, max_connections: int = 32):
        self.url, self.log_keep, self.key_ttl_s = url, log_keep, key_ttl_s
        self.max_connections = max_connections
        self._redis: aioredis.Redis | None = None  # commands (redis-py retries on connection errors)
        self._sub_client: aioredis.Redis | None = None  # the pub/sub connection: no silent retry
        self._pubsub = None
        self._rooms: dict[str, _Room] = {}  # channel -> room
        self._queue: asyncio.Queue = asyncio.Queue()
        self._pub_queue: collections.deque = collections.deque()  # (script args, future) to publish
        self._pub_wake = asyncio.Event()
        self._sub_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self._closing = False
        self._reconnecting = False
        self.proc = os.urandom(8).hex()  # this process, in `held` hashes and its heartbeat key
        self._control = f"fitroom:broker:{self.proc}"  # keeps the pub/sub connection open
        self._started = asyncio.Event()
        self.reconnects = 0  # pub/sub reconnections so far (for tests and logs)
        self.gaps_filled = 0  # events delivered from the log instead of pub/sub

    # --- life cycle

    async def start(self) -> None:
        from fitroom.errors import FitroomError

        # A blocking pool: a burst of publishes waits for one of `max_connections` instead of failing.
        # Commands retry a dropped connection (a stale pooled one after a Redis restart) 5 times within
        # about 2 s; a retried publish is not published twice (its publish id).
        retry = Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 5)
        pool = aioredis.BlockingConnectionPool.from_url(self.url, max_connections=self.max_connections, timeout=30,
                                                        retry=retry)
        self._redis = aioredis.Redis(connection_pool=pool)
        self._sub_client = aioredis.Redis.from_url(self.url, retry=Retry(NoBackoff(), 0))
        try:
            await self._redis.ping()
        except (aioredis.RedisError, OSError) as e:
            await self._redis.aclose(close_connection_pool=True)
            await self._sub_client.aclose()
            raise FitroomError("redis_unavailable", f"Cannot reach Redis at {redact(self.url)} "
                               f"(FITROOM_REDIS_URL): {e}") from e
        self._publish_sha = await self._redis.script_load(_PUBLISH)
        self._init_seq = self._redis.register_script(_INIT_SEQ)
        self._recent = self._redis.register_script(_RECENT)
        self._take_over = self._redis.register_script(_TAKE_OVER)
        self._release = self._redis.register_script(_RELEASE)
        await self._redis.set(proc_key(self.proc), 1, ex=PROC_TTL_S)
        self._pubsub = self._sub_client.pubsub()
        await self._pubsub.subscribe(self._control)
        self._tasks = [asyncio.create_task(self._read_loop(), name="redis-broker-reader"),
                       asyncio.create_task(self._dispatch_loop(), name="redis-broker-dispatcher"),
                       asyncio.create_task(self._publish_loop(), name="redis-broker-publisher"),
                       asyncio.create_task(self._heartbeat_loop(), name="redis-broker-heartbeat")]
        await asyncio.wait_for(self._started.wait(), SUBSCRIBE_WAIT_S)

    async def close(self) -> None:
        self._closing = True
        while self._pub_queue:
            _, fut = self._pub_queue.popleft()
            if not fut.done():
                fut.set_exception(ConnectionError("the Redis broker closed"))
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []
        for room in self._rooms.values():
            if not room.ready.done():
                room.ready.cancel()
        self._rooms.clear()
        with contextlib.suppress(Exception):  # the other processes take this one's members over now
            await self._redis.delete(proc_key(self.proc))
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        for client in (self._sub_client, self._redis):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose(close_connection_pool=True)

    # --- the protocol

    async def publish(self, room_id: str, event: dict) -> dict:
        body = _dumps(event)
        if not body.startswith("{"):
            raise TypeError("an event is a JSON object")
        counter, log_key, channel = room_keys(room_id)
        publish_id = f"{counter[:-4]}:pub:{os.urandom(9).hex()}"
        seq = await self._enqueue(("event", counter, log_key, channel, publish_id, body, self.log_keep,
                                   self.key_ttl_s, PUBLISH_ID_TTL_S))
        out = {"seq": int(seq)}
        out.update((k, v) for k, v in event.items() if k != "seq")
        return out

    async def signal(self, room_id: str, event: dict) -> None:
        body = _dumps(event)
        text = '{"seq":null}' if body == "{}" else '{"seq":null,' + body[1:]
        await self._enqueue(("signal", room_keys(room_id)[2], text))  # in order with this process's publishes

    async def subscribe(self, room_id: str, handler: Callable[[dict], None]) -> None:
        channel = room_keys(room_id)[2]
        async with self._sub_lock:
            room = self._rooms.get(channel)
            if room is not None:
                if handler not in room.handlers:
                    room.handlers.append(handler)
            else:
                room = self._rooms[channel] = _Room(room_id, channel)
                room.handlers.append(handler)
                if not self._reconnecting:  # else the reconnection subscribes every room
                    try:
                        await self._pubsub.subscribe(channel)
                    except (aioredis.RedisError, OSError) as e:  # the reader reconnects
                        log.warning("room %s: SUBSCRIBE failed (%s); subscribing after reconnection", room_id, e)
        try:
            await asyncio.wait_for(asyncio.shield(room.ready), SUBSCRIBE_WAIT_S)
        except asyncio.TimeoutError:
            log.warning("room %s: Redis has not confirmed the subscription in %.0f s; events are held "
                        "until it does", room_id, SUBSCRIBE_WAIT_S)

    async def unsubscribe(self, room_id: str, handler) -> None:
        channel = room_keys(room_id)[2]
        async with self._sub_lock:
            room = self._rooms.get(channel)
            if room is None:
                return
            with contextlib.suppress(ValueError):
                room.handlers.remove(handler)
            if room.handlers:
                return
            del self._rooms[channel]
            if not room.ready.done():
                room.ready.cancel()
            if not self._reconnecting:
                try:
                    await self._pubsub.unsubscribe(channel)
                except (aioredis.RedisError, OSError) as e:
                    log.warning("room %s: UNSUBSCRIBE failed (%s)", room_id, e)

    async def recent(self, room_id: str, after_seq: int) -> list[dict] | None:
        counter, log_key, _ = room_keys(room_id)
        rows = await self._recent(keys=[counter, log_key], args=[int(after_seq)])
        if rows is None:
            return None
        return [json.loads(r) for r in rows]

    async def last_seq(self, room_id: str) -> int | None:
        value = await self._redis.get(room_keys(room_id)[0])
        return None if value is None else int(value)

    async def init_seq(self, room_id: str, seq: int) -> None:
        counter, log_key, channel = room_keys(room_id)
        await self._init_seq(keys=[counter, log_key], args=[int(seq), self.key_ttl_s])
        if channel in self._rooms:  # this process's subscribers are at `seq` at least
            self._queue.put_nowait(("floor", channel, int(seq)))

    async def hold(self, room_id: str, member_id: str) -> None:
        key = held_key(room_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(key, member_id, self.proc)
        pipe.expire(key, self.key_ttl_s)
        await pipe.execute()

    async def release(self, room_id: str, member_id: str) -> None:
        await self._release(keys=[held_key(room_id)], args=[member_id, self.proc])

    async def orphans(self, members: dict[str, list[str]]) -> dict[str, list[str]]:
        rooms = [(room_id, ids) for room_id, ids in members.items() if ids]
        if not rooms:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for room_id, ids in rooms:
            pipe.hmget(held_key(room_id), ids)
        holders = [[h.decode() if h is not None else None for h in row] for row in await pipe.execute()]
        others = sorted({h for row in holders for h in row if h is not None and h != self.proc})
        if not others:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for p in others:
            pipe.exists(proc_key(p))
        stopped = {p for p, n in zip(others, await pipe.execute()) if not n}
        if not stopped:
            return {}
        taken: dict[str, list[str]] = {}
        for (room_id, ids), row in zip(rooms, holders):
            pairs = [x for m, h in zip(ids, row) if h in stopped for x in (m, h)]
            if not pairs:
                continue
            try:
                moved = await self._take_over(keys=[held_key(room_id)], args=[self.proc, *pairs])
            except (aioredis.RedisError, OSError) as e:  # the rooms already moved must still be returned
                log.warning("room %s: taking members over failed: %s", room_id, e)
                continue
            if moved:
                taken[room_id] = [m.decode() for m in moved]
        return taken

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await self._redis.set(proc_key(self.proc), 1, ex=PROC_TTL_S)
            except Exception as e:  # noqa: BLE001 - a dead heartbeat would make the others take this process's members
                log.warning("the heartbeat to Redis failed: %s", e)

    # --- the publisher: one pipeline at a time, every publish queued meanwhile in the next

    def _enqueue(self, item: tuple) -> asyncio.Future:
        if self._closing or not self._tasks:
            raise ConnectionError("the Redis broker is not running")
        fut = asyncio.get_running_loop().create_future()
        self._pub_queue.append((item, fut))
        self._pub_wake.set()
        return fut

    async def _publish_loop(self) -> None:
        """Sends the queued publishes and signals in order, as one pipeline per round trip: one waits
        at most for the round trip in flight, and under load the batches grow instead of the number
        of connections and round trips (a single EVALSHA through redis-py costs about 4 times the
        CPU of one in a pipeline of 16). One whose caller was cancelled before it went out is dropped."""
        queue = self._pub_queue
        while True:
            if not queue:
                self._pub_wake.clear()
                await self._pub_wake.wait()
                continue
            batch = []
            while queue and len(batch) < PUBLISH_BATCH_MAX:
                item, fut = queue.popleft()
                if not fut.done():
                    batch.append((item, fut))
            if not batch:
                continue
            try:
                results = await self._publish_batch([item for item, _ in batch])
            except asyncio.CancelledError:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(ConnectionError("the Redis broker closed"))
                raise
            except Exception as e:  # noqa: BLE001 - Redis unreachable after redis-py's retries
                log.warning("publishing %d events to Redis failed: %s", len(batch), e)
                results = [e] * len(batch)
            for (_, fut), result in zip(batch, results):
                if fut.done():  # the caller went away meanwhile
                    continue
                if isinstance(result, Exception):
                    fut.set_exception(result)
                else:
                    fut.set_result(result)

    async def _publish_batch(self, items: list[tuple]) -> list:
        """Runs ("event", script args...) and ("signal", channel, text) items in one pipeline."""
        results: list = [None] * len(items)
        todo = list(range(len(items)))
        for attempt in range(2):
            pipe = self._redis.pipeline(transaction=False)
            for i in todo:
                item = items[i]
                if item[0] == "event":
                    pipe.evalsha(self._publish_sha, 4, *item[1:])
                else:
                    pipe.publish(item[1], item[2])
            for i, result in zip(todo, await pipe.execute(raise_on_error=False)):
                results[i] = result
            todo = [i for i in todo if isinstance(results[i], NoScriptError)]
            if not todo or attempt:
                break
            # Redis restarted and forgot the script: load it again and run those once more.
            self._publish_sha = await self._redis.script_load(_PUBLISH)
        return results

    # --- the reader: the pub/sub socket into the queue

    async def _read_loop(self) -> None:
        queue = self._queue
        while not self._closing:
            pubsub = self._pubsub
            try:
                # What PubSub.parse_response(block=True) does, less its retry and health-check layers
                # (a third of the CPU per message without hiredis); errors reach the handler below.
                raw = await pubsub.connection.read_response(timeout=math.inf, disconnect_on_error=False,
                                                            push_request=True)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # ConnectionError, TimeoutError, OSError, a closed connection
                if self._closing:
                    return
                log.warning("lost the Redis pub/sub connection to %s (%s: %s); reconnecting",
                            redact(self.url), type(e).__name__, e)
                await self._reconnect()
                continue
            if raw is None:
                continue
            kind = raw[0]
            if kind == b"message":
                queue.put_nowait(("msg", raw[1].decode(), raw[2]))
                continue
            msg = await pubsub.handle_message(raw)  # redis-py's own bookkeeping of subscriptions
            if msg and msg["type"] == "subscribe":
                channel = msg["channel"].decode() if isinstance(msg["channel"], bytes) else msg["channel"]
                if channel == self._control:
                    self._started.set()
                else:
                    queue.put_nowait(("subscribed", channel, None))

    async def _reconnect(self) -> None:
        self._reconnecting = True
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        delay = BACKOFF_FIRST_S
        while not self._closing:
            await asyncio.sleep(delay)
            async with self._sub_lock:
                pubsub = self._sub_client.pubsub()
                try:
                    await pubsub.subscribe(self._control, *self._rooms)
                except (aioredis.RedisError, OSError) as e:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                    log.warning("Redis reconnection failed (%s); next try in %.1f s", e, min(delay * 2, BACKOFF_MAX_S))
                    delay = min(delay * 2, BACKOFF_MAX_S)
                    continue
                self._pubsub = pubsub
                self._reconnecting = False
                self.reconnects += 1
                log.warning("reconnected to Redis at %s; %d rooms subscribed again", redact(self.url), len(self._rooms))
                return

    # --- the dispatcher: order, gaps, duplicates, handlers

    async def _dispatch_loop(self) -> None:
        queue, rooms = self._queue, self._rooms
        while True:
            kind, channel, data = await queue.get()
            room = rooms.get(channel)
            if room is None:
                continue
            try:
                if kind == "msg":
                    event = json.loads(data)
                    if event.get("seq") is None:
                        self._deliver(room, event)
                    elif room.last is None:
                        room.held.append(event)
                    else:
                        await self._take(room, event)
                elif kind == "subscribed":
                    await self._subscribed(room)
                elif kind == "floor" and room.last is not None and data > room.last:
                    room.last = data
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("room %s: dispatching %s failed", room.room_id, kind)

    async def _subscribed(self, room: _Room) -> None:
        if room.last is None:  # a new subscription: it starts after the counter's value now
            value = await self._retrying(self.last_seq, room.room_id)
            room.last = value or 0
            held, room.held = room.held, []
            for event in held:
                await self._take(room, event)
            if not room.ready.done():
                room.ready.set_result(None)
        else:  # subscribed again after a reconnection: what was published meanwhile
            await self._fill(room, None)

    async def _take(self, room: _Room, event: dict) -> None:
        seq = event["seq"]
        if seq <= room.last:
            return
        if seq > room.last + 1:
            await self._fill(room, seq)
            if seq <= room.last:
                return
        room.last = seq
        self._deliver(room, event)

    async def _fill(self, room: _Room, seen: int | None) -> None:
        """Delivers the logged events after `room.last` (a gap below `seen`, or after a reconnection)."""
        before = room.last
        events = await self._retrying(self.recent, room.room_id, before)
        if events is None:
            log.error("room %s: events after seq %d are no longer in the Redis log (it keeps %d); "
                      "they are skipped", room.room_id, before, self.log_keep)
            return
        for event in events:
            if event["seq"] > room.last:
                room.last = event["seq"]
                self.gaps_filled += 1
                self._deliver(room, event)
        if seen is not None and room.last + 1 < seen:
            log.error("room %s: seqs %d..%d are missing from the Redis log; skipped", room.room_id,
                      room.last + 1, seen - 1)
        elif room.last > before:
            log.info("room %s: delivered seqs %d..%d from the Redis log", room.room_id, before + 1, room.last)

    async def _retrying(self, fn, *args):
        delay = BACKOFF_FIRST_S
        while True:
            try:
                return await fn(*args)
            except (aioredis.RedisError, OSError) as e:
                if self._closing:
                    raise
                log.warning("Redis read failed (%s); again in %.1f s", e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)

    @staticmethod
    def _deliver(room: _Room, event: dict) -> None:
        for handler in tuple(room.handlers):
            try:
                handler(event)
            except Exception:
                log.exception("room %s: a handler failed on %s", room.room_id, event.get("type"))
