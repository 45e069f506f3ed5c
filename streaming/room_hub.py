"""`RoomHub`: the live shared rooms of one server process (docs/rooms.md).

The hub holds, per room in use here, a `LiveRoom`: the `RoomState`, the members' sockets (one live
socket per member: a newer one replaces the older, which closes 4408), a token bucket per member,
grace timers, and the last `MEMORY_LOG` events as the JSON text members receive.

A message's path, all on the event loop, no thread hop, no database round trip:

    socket -> rate limit -> parse_client_message -> decide (against the local state)
           -> broker.publish (sequenced) or broker.signal (ephemeral)
           -> every process's subscriber `LiveRoom.on_event`: apply, serialise ONCE, append to the
              memory log, push the same text onto the send queue of every local socket
              (ephemeral: every local socket but the sender's; one with a `to`, `rtc` or a
              `voice` answer: only the addressee's socket, in whichever process has it)

Each socket has its own sender task and a bounded queue (`SEND_QUEUE_MAX` frames): a slow client
never blocks the others; one whose queue overflows is closed 1013 `too_slow` (it is away, and
resumes with `since` like any dropped client). Errors go to the offending socket only and never
change the room. A member whose refusals by the rate limit reach `FLOOD_CLOSE` in a row is
closed 4429 `flooding`; the bucket is the member's, so a reconnect does not refill it.

Welcome and resume: the socket is registered and the state's seq `S` taken with no `await`
between, so every event after `S` reaches the socket exactly once. With `since=N` the events
`N < seq <= S` are replayed first: from the memory log when it reaches back, else from the
database (the tail the database does not hold yet comes from the memory log) with live events held
back meanwhile. More than `REPLAY_MAX` missed events are not replayed: the welcome then says
`"resumed": false` and the client takes `room` as is.

Presence and grace: a member's newest socket wins, in this process (the older one is closed
`replaced` at once) and across processes (`SOCKET_SIGNAL`, `LiveRoom._socket_signal`). A socket
that connects publishes `presence online` (unless it replaces a live socket of the same member
here); a member's last socket dropping publishes `presence away` and starts a grace timer
(`settings.room_grace_s`): not back by then, `left` with reason `timeout`. A member who joined over
HTTP gets the same grace to open its first socket. Any `presence online` of a member
(from this process or another) cancels this process's timer for it. The process with a member's
socket or timer holds them in the broker; once a second each process takes over the members of its
rooms that a stopped process held (`broker.orphans`: away, reason `server_gone`, a grace timer
here). When the host leaves (any reason) the next host is the earliest-joined remaining member
(`room_state.apply`); the hub writes it in the `left` event as `new_host` for clients.

Persistence, write-behind: the events this process published are batched (every `settings.room_flush_s`,
or at once from `FLUSH_BATCH` events) and stored by one worker-thread call per period
(`room_store.append_batches`): every room's events and due snapshots (every `SNAPSHOT_EVERY`
events or `SNAPSHOT_EVERY_S`) in one transaction; a failed batch is retried (`STORE_RETRIES`).
Creating and joining a room wait for their batch to be stored before answering. `stop()` (app
shutdown) stores everything, so a graceful restart loses nothing; a hard kill leaves its last
batch (at most `room_flush_s` of events) out of the database. With Redis the broker's log still
has it, and a process that takes over the killed one's members, or loads the room, stores it
(`_backfill`); with the in-process broker it is lost.

Loading: a room is loaded on first use: the stored snapshot plus the stored events after it, then
the broker's counter is raised to that seq (`init_seq`), the subscription made, and events the
broker has beyond the database (`recent`) applied. When the broker knew nothing of the room (an
in-process broker after a restart) its members are away from that moment: members the snapshot
shows online get `presence away`, and every member gets the grace period to come back. With Redis,
a broker that knows the room means other processes may hold its members' sockets: only members
already away get a timer (a duplicate `left` from two processes is harmless: `apply` ignores the
second). A room with no sockets, no timers and nothing to store is dropped from memory after
`IDLE_UNLOAD_S`; an ended room as soon as its sockets are closed and its events stored.

Stage: `stage on` is accepted only with the id of a live try-on session on this server
(`app.state.tryon.registry`) that no other member, of this room or another, has on stage now;
the id stays in the state and the stored events, and
`room_state.public_event` strips it from every frame members receive.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import hmac
import itertools
import json
import logging
import secrets
import time
from typing import Any

from fitroom.errors import FitroomError
from streaming import room_store as store
from streaming.control_channel import TokenBucket
from streaming.room_broker import LOG_KEEP, Broker, make_broker
from streaming.room_protocol import ADDRESSED, CLOSE, EPHEMERAL, RoomCreate, RoomProtocolError, parse_client_message
from streaming.room_state import (
    RoomState, apply, decide, from_json, join_event, left_event, new_room, presence_event, public_event, to_json,
    view,
)

log = logging.getLogger("fitroom.rooms")

MEMORY_LOG = 2000       # events of a room kept in memory (as the text members receive) for resumes
REPLAY_MAX = 10_000     # a resume missing more than this gets the room as is, no replay
SEND_QUEUE_MAX = 1000   # frames waiting for one socket before it is closed `too_slow`
FLOOD_CLOSE = 100       # refusals by the rate limit in a row that close a socket 4429
SOCKET_SIGNAL = "socket"  # a hub-to-hub signal (never sent to members): a member's new socket
TAKE_OVER_EVERY_S = 1.0  # how often members of stopped processes are looked for
FLUSH_BATCH = 200       # pending events that start a flush at once
SNAPSHOT_EVERY = 200    # events between two stored snapshots of a room ...
SNAPSHOT_EVERY_S = 5.0  # ... or seconds
IDLE_UNLOAD_S = 300.0   # a room unused this long is dropped from memory
STORE_RETRIES = 5       # failed writes of a batch before it is given up (logged)
JOIN_WAIT_S = 10.0      # how long a join waits for its own `joined` event to come back from the broker
LAG_WARN_S = 0.25       # a write-behind tick this late is logged (the event loop was blocked)
CLOSE_SLOW = (1013, "too_slow")
CLOSE_RESTART = (1012, "restart")

_CLOSE_ITEM = object()


def now_ms() -> int:
    return int(time.time() * 1000)


def dumps(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def new_id() -> str:
    """A member or cart item id (8 characters, 48 random bits)."""
    return secrets.token_urlsafe(6)


def _close_for(reason: str) -> tuple[int, str]:
    return CLOSE[reason], reason


class Conn:
    """One member socket: a bounded send queue drained by its own task (`run`)."""

    __slots__ = ("ws", "member_id", "queue", "wake", "limit", "held", "closing", "task", "recv_task", "on_overflow",
                 "token", "announced")

    def __init__(self, ws, member_id: str, limit: int = SEND_QUEUE_MAX):
        self.ws, self.member_id, self.limit = ws, member_id, limit
        self.token = secrets.token_hex(6)  # names this socket in the `socket` signal
        self.announced = False  # its own `socket` signal has come back through the broker
        self.queue: collections.deque = collections.deque()
        self.wake = asyncio.Event()
        self.held: list[str] | None = None  # live frames held back while a replay is fetched
        self.closing: tuple[int, str] | None = None
        self.task: asyncio.Task | None = None       # the sender (`run`)
        self.recv_task: asyncio.Task | None = None  # the hub's receive loop of this socket
        self.on_overflow = None

    def push(self, text: str) -> None:
        if self.closing is not None:
            return
        if self.held is not None:
            self.held.append(text)
            if len(self.held) > self.limit:
                self._overflow()
            return
        if len(self.queue) >= self.limit:
            self._overflow()
            return
        self.queue.append(text)
        self.wake.set()

    def _overflow(self) -> None:
        # The queue only grows while the sender waits for the transport to drain (uvicorn's
        # backpressure): the client stopped reading. A close frame could not get through either:
        # the sender and the receive loop are cancelled, and the hub drops the socket (away, grace).
        self.queue.clear()
        self.held = None
        if self.closing is None:
            self.closing = CLOSE_SLOW
        for task in (self.task, self.recv_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        if self.on_overflow is not None:
            self.on_overflow(self)

    def release(self, frames: list[str]) -> None:
        """Ends a hold: `frames` (the replay) then the held live frames go out, in that order."""
        held, self.held = self.held or [], None
        if self.closing is not None:
            return
        self.limit += len(frames)  # a long replay is not a slow client
        for text in frames:
            self.queue.append(text)
        for text in held:
            self.push(text)
        self.wake.set()

    def close(self, code: int, reason: str) -> None:
        """Sends what is queued, then closes with `code` and `reason` (once)."""
        if self.closing is not None:
            return
        self.closing = (code, reason)
        self.queue.append(_CLOSE_ITEM)
        self.wake.set()

    async def run(self) -> None:
        ws, queue = self.ws, self.queue
        try:
            while True:
                while queue:
                    item = queue.popleft()
                    if item is _CLOSE_ITEM:
                        code, reason = self.closing
                        await ws.close(code, reason)
                        return
                    await ws.send_text(item)
                self.wake.clear()
                await self.wake.wait()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the client went away; the receive side sees it too
            self.closing = self.closing or (1006, "gone")
            queue.clear()


class LiveRoom:
    """A room loaded in this process."""

    def __init__(self, hub: "RoomHub", row: store.RoomRow, state: RoomState):
        self.hub, self.id, self.row, self.state = hub, row.id, row, state
        self.conns: dict[str, Conn] = {}
        self.log: collections.deque[tuple[int, str]] = collections.deque(maxlen=MEMORY_LOG)
        self.buckets: dict[str, TokenBucket] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.pending: list[dict] = []  # events published here, not yet stored
        self.failures = 0
        self.snapshot_seq = row.snapshot_seq
        self.snapshot_at = time.monotonic()
        self.ready = False               # subscribed and caught up
        self.buffer: list[dict] = []     # sequenced events that arrived while not ready / catching up
        self.catching_up = False
        self.waiters: list[tuple[int, asyncio.Future]] = []
        self.join_lock = asyncio.Lock()
        self.used_at = time.monotonic()
        self.gone = False                # unloaded: a new LiveRoom takes over on next use

    # ---- events in -------------------------------------------------------------------------------

    def on_event(self, event: dict) -> None:
        """The broker subscriber: runs on the event loop for every event of the room."""
        seq = event.get("seq")
        if seq is None:
            if event.get("type") == SOCKET_SIGNAL:
                self._socket_signal(event)
            else:
                self._ephemeral(event)
            return
        if not self.ready or self.catching_up:
            self.buffer.append(event)
            return
        if seq <= self.state.seq:
            return  # already applied
        if seq > self.state.seq + 1:
            log.warning("room %s: seq %d after %d; catching up", self.id, seq, self.state.seq)
            self.buffer.append(event)
            self.catching_up = True
            self.hub._spawn(self.hub._catch_up(self))
            return
        self.take(event)

    def take(self, event: dict) -> None:
        """Applies the next sequenced event and sends it to this process's sockets."""
        seq = event["seq"]
        try:
            apply(self.state, event)
        except Exception:  # noqa: BLE001 - apply is total; a bug there must not stop the room
            log.exception("room %s: apply failed on seq %s", self.id, seq)
        self.state.seq = max(self.state.seq, seq)
        text = dumps(public_event(event))
        self.log.append((seq, text))
        for conn in self.conns.values():
            conn.push(text)
        self.used_at = time.monotonic()
        self.hub._after(self, event)
        if self.waiters:
            still = []
            for want, fut in self.waiters:
                if seq >= want:
                    if not fut.done():
                        fut.set_result(None)
                else:
                    still.append((want, fut))
            self.waiters = still

    def _socket_signal(self, event: dict) -> None:
        """The newest socket of a member wins across processes too. Every socket, once attached,
        signals itself; the broker gives all processes one order. A socket whose own signal came
        back before another socket's of the same member is the older one: it is closed `replaced`,
        taken out first so that its close publishes no `away` (the member is online elsewhere).
        One whose own signal is still on its way is the newer one and stays."""
        member_id = event.get("member")
        conn = self.conns.get(member_id)
        if conn is None:
            return
        if event.get("conn") == conn.token:
            conn.announced = True
        elif conn.announced:
            del self.conns[member_id]
            conn.close(*_close_for("replaced"))

    def _ephemeral(self, event: dict) -> None:
        sender, to = event.get("member"), event.get("to")
        if to is not None:
            # Addressed (`rtc`, a `voice` answer): every process gets the signal; only the one
            # holding the addressee's socket delivers it, to that socket alone, never to a third member.
            conn = self.conns.get(to) if to != sender and event.get("type") in ADDRESSED else None
            if conn is not None:
                conn.push(dumps(public_event(event)))
            return
        text = dumps(public_event(event))
        for member_id, conn in self.conns.items():
            if member_id != sender:
                conn.push(text)

    def drain(self) -> None:
        """Takes the buffered events in seq order (after loading or catching up)."""
        buffered, self.buffer = sorted(self.buffer, key=lambda e: e["seq"]), []
        for event in buffered:
            if event["seq"] == self.state.seq + 1:
                self.take(event)
            elif event["seq"] > self.state.seq + 1:
                self.buffer.append(event)  # still a gap: the next catch-up takes it

    async def wait_seq(self, seq: int, timeout: float) -> None:
        if self.state.seq >= seq:
            return
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append((seq, fut))
        await asyncio.wait_for(fut, timeout)

    # ---- replay ----------------------------------------------------------------------------------

    def memory_replay(self, since: int, until: int) -> list[str] | None:
        """The texts of events since < seq <= until from the memory log, or None when it does not reach."""
        if since >= until:
            return []
        if not self.log or self.log[0][0] > since + 1:
            return None
        out = []
        for seq, text in itertools.islice(self.log, since + 1 - self.log[0][0], None):
            if seq > until:
                break
            out.append(text)
        return out if len(out) == until - since else None

    def idle(self) -> bool:
        return not self.conns and not self.timers and not self.pending and not self.catching_up


class RoomHub:
    """The rooms of this process: create/join over HTTP, sockets, persistence (see the module doc)."""

    def __init__(self, settings, db, broker: Broker | None = None, tryon=None):
        self.settings, self.db, self.tryon = settings, db, tryon
        self.broker: Broker = broker if broker is not None else make_broker(settings.redis_url)
        self.rooms: dict[str, LiveRoom] = {}
        self._loading: dict[str, asyncio.Task] = {}
        self._tasks: set[asyncio.Task] = set()
        self._flusher: asyncio.Task | None = None
        self._flush_wake: asyncio.Event | None = None
        self._flush_lock: asyncio.Lock | None = None
        self._started = False
        self._stopping = False

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._flush_wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        await self.broker.start()
        self._flusher = asyncio.ensure_future(self._flush_loop())
        self._spawn(self._take_over_loop())

    async def stop(self) -> None:
        """Closes every socket (1012), stores every pending event and snapshot, closes the broker."""
        if not self._started or self._stopping:
            return
        self._stopping = True
        for room in list(self.rooms.values()):
            for handle in room.timers.values():
                handle.cancel()
            room.timers.clear()
            for conn in list(room.conns.values()):
                conn.close(*CLOSE_RESTART)
        await asyncio.sleep(0)
        if self._flusher is not None:  # let a write in flight finish (a cancel would not stop its thread)
            self._flush_wake.set()
            try:
                await asyncio.wait_for(self._flusher, 30.0)
            except (asyncio.TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001
                log.exception("rooms: the write-behind task did not stop cleanly")
        await self.flush(snapshot=True)
        for task in list(self._tasks):
            task.cancel()
        for room in list(self.rooms.values()):
            for conn in room.conns.values():
                if conn.task is not None:
                    conn.task.cancel()
        try:
            await self.broker.close()
        except Exception:  # noqa: BLE001
            log.exception("rooms: closing the broker failed")

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("rooms: a background task failed", exc_info=task.exception())

    # ---- loading ---------------------------------------------------------------------------------

    async def room(self, room_id: str) -> LiveRoom:
        """The live room (loaded from the database on first use); FitroomError `no_room` when there is none."""
        room = self.rooms.get(room_id)
        if room is not None:
            room.used_at = time.monotonic()
            return room
        await self.start()
        if not isinstance(room_id, str) or not 1 <= len(room_id) <= 16:
            raise RoomProtocolError("no_room", "There is no such room.")
        task = self._loading.get(room_id)
        if task is None:
            task = self._loading[room_id] = asyncio.ensure_future(self._load(room_id))
            task.add_done_callback(lambda _t: self._loading.pop(room_id, None))
        return await asyncio.shield(task)

    async def _load(self, room_id: str) -> LiveRoom:
        loaded = await asyncio.to_thread(store.load_room, self.db, room_id)
        if loaded is None or loaded.snapshot is None:
            raise RoomProtocolError("no_room", f"There is no room {room_id!r}.")
        state = from_json(loaded.snapshot)
        tail = []
        for event in loaded.events:
            if event.get("seq") == state.seq + 1:
                apply(state, event)
                tail.append(event)
            elif event.get("seq", 0) > state.seq + 1:
                log.error("room %s: stored events jump from seq %d to %s", room_id, state.seq, event.get("seq"))
                break
        room = LiveRoom(self, loaded.row, state)
        for event in tail[-MEMORY_LOG:]:
            room.log.append((event["seq"], dumps(public_event(event))))
        had = await self.broker.last_seq(room_id)
        await self.broker.init_seq(room_id, state.seq)
        await self.broker.subscribe(room_id, room.on_event)
        try:
            missed = await self.broker.recent(room_id, state.seq)
        except BaseException:
            await self.broker.unsubscribe(room_id, room.on_event)
            raise
        for event in sorted(missed or [], key=lambda e: e["seq"]):
            if event["seq"] == state.seq + 1:
                room.take(event)
        if missed:  # published by a process that may have stopped before storing them
            self._spawn(self._backfill(room, missed))
        if missed is None:
            log.error("room %s: the broker's log does not reach back to seq %d", room_id, state.seq)
        room.ready = True
        room.drain()
        if not room.state.ended:
            for member_id, member in list(room.state.members.items()):
                if had is None or not member.online:
                    self._start_grace(room, member_id)
            if had is None:  # nobody holds these members' sockets: they are away from now, and ours
                for member_id in list(room.state.members):
                    await self._hold(room, member_id)
                for member_id in [m.id for m in room.state.members.values() if m.online]:
                    await self.publish(room, presence_event(member_id, "away"))
        self.rooms[room_id] = room
        return room

    async def _catch_up(self, room: LiveRoom) -> None:
        """Fills a gap in the room's events from the broker's log, else the database."""
        try:
            for _ in range(3):
                events = await self.broker.recent(room.id, room.state.seq)
                if events is None:
                    events = await asyncio.to_thread(store.events_since, self.db, room.id, room.state.seq)
                room.buffer.extend(events)
                room.catching_up = False
                room.drain()
                if not room.buffer:
                    return
                room.catching_up = True
                await asyncio.sleep(0.05)
            log.error("room %s: could not fill the gap after seq %d; skipping ahead", room.id, room.state.seq)
            room.state.seq = min(e["seq"] for e in room.buffer) - 1
            room.catching_up = False
            room.drain()
        finally:
            room.catching_up = False

    async def _attach(self, room: LiveRoom) -> LiveRoom:
        """The room as live now (`room` may have been unloaded meanwhile)."""
        return room if not room.gone else await self.room(room.id)

    # ---- publishing ------------------------------------------------------------------------------

    async def publish(self, room: LiveRoom, body: dict) -> dict:
        """Publishes a sequenced event of `room` (with `at` and `room_id`); stored write-behind."""
        body.setdefault("at", now_ms())
        body.setdefault("room_id", room.id)
        if body.get("type") == "left" and body.get("member") == room.state.host:
            body.setdefault("new_host", next((m for m in room.state.members if m != body["member"]), None))
        event = await self.broker.publish(room.id, body)
        room.pending.append(event)
        if len(room.pending) >= FLUSH_BATCH and self._flush_wake is not None:
            self._flush_wake.set()
        return event

    def _after(self, room: LiveRoom, event: dict) -> None:
        """What an applied event does to this process's sockets and timers."""
        kind, member_id = event.get("type"), event.get("member")
        if kind == "presence" and event.get("status") == "online":
            self._cancel_grace(room, member_id)
        elif kind == "presence" and event.get("reason") == "server_gone" and member_id in room.conns:
            # Taken over while this process still holds the socket (it was cut off from the broker
            # for PROC_TTL_S): hold it again and say the member is here.
            self._cancel_grace(room, member_id)
            self._spawn(self._reclaim(room, member_id))
        elif kind == "left":
            if member_id in room.state.members:
                return  # not applied (a kick by someone no longer host)
            self._spawn(self.broker.release(room.id, member_id))
            self._cancel_grace(room, member_id)
            room.buckets.pop(member_id, None)
            conn = room.conns.pop(member_id, None)
            if conn is not None:
                reason = event.get("reason")
                conn.close(*(_close_for("kicked") if reason == "kicked" else
                             _close_for("left") if reason == "left" else _close_for("bad_token")))
        elif kind == "ended" and room.state.ended:
            for handle in room.timers.values():
                handle.cancel()
            room.timers.clear()
            for conn in room.conns.values():
                conn.close(*_close_for("room_ended"))
            room.conns.clear()
            if self._flush_wake is not None:
                self._flush_wake.set()

    # ---- grace -----------------------------------------------------------------------------------

    def _start_grace(self, room: LiveRoom, member_id: str) -> None:
        if self._stopping:
            return
        self._cancel_grace(room, member_id)
        loop = asyncio.get_running_loop()
        room.timers[member_id] = loop.call_later(self.settings.room_grace_s, self._grace_over, room, member_id)

    def _cancel_grace(self, room: LiveRoom, member_id: str) -> None:
        handle = room.timers.pop(member_id, None)
        if handle is not None:
            handle.cancel()

    def _grace_over(self, room: LiveRoom, member_id: str) -> None:
        room.timers.pop(member_id, None)
        if room.gone or self._stopping or room.state.ended:
            return
        if member_id in room.conns or member_id not in room.state.members:
            return
        self._spawn(self.publish(room, left_event(member_id, "timeout")))

    # ---- presence across processes ----------------------------------------------------------------

    async def _hold(self, room: LiveRoom, member_id: str) -> None:
        """Tells the broker this process answers for the member (failing that, presence still works
        here; only a takeover after this process stops would miss them)."""
        try:
            await self.broker.hold(room.id, member_id)
        except Exception as e:  # noqa: BLE001
            log.warning("room %s: could not hold member %s in the broker: %s", room.id, member_id, e)

    async def _reclaim(self, room: LiveRoom, member_id: str) -> None:
        await self._hold(room, member_id)
        await self.publish(room, presence_event(member_id, "online"))

    async def _take_over_loop(self) -> None:
        """Every TAKE_OVER_EVERY_S, outside the write-behind: a slow broker must not hold up storing."""
        while not self._stopping:
            await asyncio.sleep(TAKE_OVER_EVERY_S)
            try:
                await self._take_over()
            except Exception as e:  # noqa: BLE001 - the broker is down: try again next time
                log.warning("rooms: looking for members of stopped processes failed: %s", e)

    async def _take_over(self) -> None:
        """Members of the rooms here that a stopped process held: they are away, with a grace timer here."""
        members = {room.id: [m for m in room.state.members if m not in room.conns]
                   for room in self.rooms.values() if room.ready and not room.state.ended}
        away = []
        for room_id, member_ids in (await self.broker.orphans(members)).items():
            room = self.rooms.get(room_id)
            if room is None:
                continue
            self._spawn(self._backfill(room))
            for member_id in member_ids:
                member = room.state.members.get(member_id)
                if member is None or member_id in room.conns:
                    continue
                log.info("room %s: member %s was held by a stopped server; taken over", room_id, member_id)
                self._start_grace(room, member_id)  # first, for all: they are ours now
                if member.online:
                    away.append((room, member_id))
        for room, member_id in away:
            try:
                await self.publish(room, presence_event(member_id, "away", "server_gone"))
            except Exception as e:  # noqa: BLE001 - the grace timer still lets them leave
                log.warning("room %s: publishing %s away failed: %s", room.id, member_id, e)

    async def _backfill(self, room: LiveRoom, events: list[dict] | None = None) -> None:
        """Stores the room's events missing from the database that the broker's log still has: those a
        stopped process published and had not stored (events stored already are skipped by the insert).
        Looks from the first missing seq, not the last stored: a survivor stores its own later events."""
        try:
            if events is None:
                until = room.state.seq
                gap = await asyncio.to_thread(store.first_missing, self.db, room.id,
                                              max(until - LOG_KEEP, 0), until)
                if gap is None:
                    return
                events = await self.broker.recent(room.id, gap - 1)
                if events is None:
                    log.error("room %s: the broker's log no longer has seq %d; it is not stored", room.id, gap)
                    return
            events = [e for e in events if e["seq"] <= room.state.seq]
            if events:
                await asyncio.to_thread(store.append_events, self.db, room.id, events)
                log.info("room %s: stored seq %d..%d from the broker's log", room.id, events[0]["seq"], events[-1]["seq"])
        except Exception:  # noqa: BLE001 - the next takeover or load tries again
            log.exception("room %s: storing the broker's log failed", room.id)

    # ---- HTTP ------------------------------------------------------------------------------------

    async def create(self, body: RoomCreate) -> dict:
        """A new room with its creator as host (the creator's `joined` is seq 1, stored before this returns)."""
        await self.start()
        s = self.settings
        room_id, invite, host_id, token = secrets.token_urlsafe(9), secrets.token_urlsafe(24), new_id(), secrets.token_urlsafe(24)
        max_members = body.max_members or s.room_max_members
        ttl = body.invite_ttl_s or s.room_invite_ttl_s
        expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=ttl)
        state = new_room(room_id, body.name, body.product_ids, max_members, host_id, body.display_name)
        row = await asyncio.to_thread(store.create_room, self.db, room_id, body.name, body.product_ids, max_members,
                                      store.hash_token(invite), expires, to_json(state),
                                      (host_id, body.display_name, store.hash_token(token)))
        room = LiveRoom(self, row, state)
        await self.broker.init_seq(room_id, 0)
        await self.broker.subscribe(room_id, room.on_event)
        room.ready = True
        self.rooms[room_id] = room
        event = await self.publish(room, join_event(state, host_id, body.display_name))
        await room.wait_seq(event["seq"], JOIN_WAIT_S)
        self._start_grace(room, host_id)
        await self._hold(room, host_id)
        await self.flush()
        return {"room_id": room_id, "name": body.name, "invite_token": invite,
                "invite_url": f"/?room={room_id}&invite={invite}", "invite_expires_at": expires.isoformat(),
                "member_id": host_id, "member_token": token, "ws_url": ws_url(room_id, token)}

    async def join(self, room_id: str, invite_token: str, name: str) -> dict:
        """A new member; RoomProtocolError no_room, bad_invite, invite_expired, room_ended, room_locked, room_full."""
        room = await self.room(room_id)
        if not hmac.compare_digest(store.hash_token(invite_token), room.row.invite_hash):
            raise RoomProtocolError("bad_invite", "The invite is not this room's.")
        if room.state.ended:
            raise RoomProtocolError("room_ended", "The room has ended.")
        if dt.datetime.now(dt.timezone.utc) >= room.row.invite_expires_at:
            raise RoomProtocolError("invite_expired", "The invite has expired: ask for a new link.")
        async with room.join_lock:
            room = await self._attach(room)
            join_event(room.state, "-", name)  # full, locked or ended: refused before anything is stored
            member_id, token = new_id(), secrets.token_urlsafe(24)
            await asyncio.to_thread(store.add_member, self.db, room_id, member_id, name, store.hash_token(token))
            room = await self._attach(room)
            try:
                body = join_event(room.state, member_id, name)
            except RoomProtocolError:
                await asyncio.to_thread(store.mark_left, self.db, room_id, member_id)
                raise
            event = await self.publish(room, body)
            await room.wait_seq(event["seq"], JOIN_WAIT_S)
            if member_id not in room.state.members:  # another process's join or lock came first
                await asyncio.to_thread(store.mark_left, self.db, room_id, member_id)
                join_event(room.state, member_id, name)  # raises the reason
                raise RoomProtocolError("room_full", f"The room is full ({room.state.max_members} members).")
            self._start_grace(room, member_id)
            await self._hold(room, member_id)
        await self.flush()
        return {"room_id": room_id, "member_id": member_id, "member_token": token, "ws_url": ws_url(room_id, token)}

    async def member(self, room_id: str, token: str | None) -> tuple[LiveRoom, str]:
        """The room and the member whose token this is; RoomProtocolError no_room, room_ended, bad_token."""
        room = await self.room(room_id)
        if room.state.ended:
            raise RoomProtocolError("room_ended", "The room has ended.")
        if not token or len(token) > 128:
            raise RoomProtocolError("bad_token", "A member token is required (?token=...).")
        row = await asyncio.to_thread(store.member_by_token, self.db, room_id, store.hash_token(token))
        room = await self._attach(room)
        if room.state.ended:
            raise RoomProtocolError("room_ended", "The room has ended.")
        if row is None or row.left_at is not None or row.id not in room.state.members:
            raise RoomProtocolError("bad_token", "The member token is unknown or no longer valid.")
        return room, row.id

    async def snapshot(self, room_id: str, token: str | None) -> dict:
        room, member_id = await self.member(room_id, token)
        return {"room_id": room.id, "member_id": member_id, "seq": room.state.seq, "room": view(room.state, member_id)}

    async def stage_session(self, room_id: str, token: str | None):
        """The try-on session of whoever is on stage (FitroomError no_stage when nobody is)."""
        room, _ = await self.member(room_id, token)
        on_stage = room.state.stage
        session_id = room.state.members[on_stage].stage_session if on_stage else None
        if not session_id or self.tryon is None:
            raise RoomProtocolError("no_stage", "Nobody is on stage.")
        try:
            return self.tryon.registry.get(session_id)
        except FitroomError:
            raise RoomProtocolError("no_stage", "The try-on on stage has ended.") from None

    # ---- sockets ---------------------------------------------------------------------------------

    async def serve_socket(self, ws, room_id: str, token: str | None, since: str | None) -> None:
        """A member's WebSocket from accept to close (docs/rooms.md: welcome, replay, messages)."""
        await ws.accept()
        try:
            room, member_id = await self.member(room_id, token)
        except RoomProtocolError as e:
            code, reason = _close_for(e.code) if e.code in CLOSE else _close_for("bad_token")
            await ws.close(code, reason)
            return
        except Exception:  # noqa: BLE001 - the database is down, say: the client may retry
            log.exception("room %s: opening a socket failed", room_id)
            await ws.close(1011, "server_error")
            return
        if self._stopping:
            await ws.close(*CLOSE_RESTART)
            return
        conn = Conn(ws, member_id)
        conn.on_overflow = lambda c: log.warning("room %s: member %s too slow; closed", room_id, c.member_id)
        replaced = self._attach_socket(room, conn, _since(since))
        conn.task = asyncio.ensure_future(conn.run())
        conn.recv_task = asyncio.ensure_future(self._socket(room, conn, replaced))
        try:
            # wait() does not raise when recv_task is cancelled (a slow socket dropped), only when
            # this endpoint itself is.
            await asyncio.wait({conn.recv_task})
            if not conn.recv_task.cancelled() and conn.recv_task.exception() is not None:
                log.error("room %s: socket of %s failed", room_id, member_id, exc_info=conn.recv_task.exception())
        finally:
            if not conn.recv_task.done():
                conn.recv_task.cancel()
            self._detach_socket(room, conn)
            if not conn.task.done():
                if conn.closing is None or conn.closing == CLOSE_SLOW:
                    conn.task.cancel()
                else:  # let the sender send what is queued and the close frame
                    try:
                        await asyncio.wait_for(asyncio.shield(conn.task), 5.0)
                    except (asyncio.TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001
                        conn.task.cancel()
            if conn.closing == CLOSE_SLOW:
                try:  # a last try at telling the client why, in case its buffer has room by now
                    await asyncio.wait_for(ws.close(*CLOSE_SLOW), 1.0)
                except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                    pass

    async def _socket(self, room: LiveRoom, conn: Conn, replaced: bool) -> None:
        await self._hold(room, conn.member_id)
        await self.broker.signal(room.id, {"type": SOCKET_SIGNAL, "member": conn.member_id, "conn": conn.token})
        if not replaced:
            await self.publish(room, presence_event(conn.member_id, "online"))
        await self._receive(room, conn)

    def _attach_socket(self, room: LiveRoom, conn: Conn, since: int | None) -> bool:
        """Registers the socket, queues the welcome and the replay (no await: nothing slips between)."""
        state, member_id = room.state, conn.member_id
        old = room.conns.get(member_id)
        if old is not None:
            old.close(*_close_for("replaced"))
        room.conns[member_id] = conn
        self._cancel_grace(room, member_id)
        room.buckets.setdefault(member_id, TokenBucket(self.settings.room_rate, self.settings.room_burst))
        seq = state.seq
        resumed = since is not None and seq - since <= REPLAY_MAX
        conn.push(dumps({"type": "welcome", "member_id": member_id, "seq": seq, "room": view(state, member_id),
                         "resumed": resumed}))
        if resumed and since < seq:
            frames = room.memory_replay(since, seq)
            if frames is not None:
                for text in frames:
                    conn.queue.append(text)
                conn.limit += len(frames)
                conn.wake.set()
            else:
                conn.held = []
                self._spawn(self._replay(room, conn, since, seq))
        return old is not None  # the member was online through the old socket: no presence event

    async def _replay(self, room: LiveRoom, conn: Conn, since: int, until: int) -> None:
        try:
            events = await asyncio.to_thread(store.events_since, self.db, room.id, since, until)
            by_seq = {e["seq"]: dumps(public_event(e)) for e in events}
            missing = [s for s in range(since + 1, until + 1) if s not in by_seq]
            if missing:
                for seq, text in room.log:
                    if since < seq <= until:
                        by_seq.setdefault(seq, text)
                missing = [s for s in missing if s not in by_seq]
            if missing:
                recent = await self.broker.recent(room.id, missing[0] - 1) or []
                for e in recent:
                    if since < e["seq"] <= until:
                        by_seq.setdefault(e["seq"], dumps(public_event(e)))
            frames = [by_seq[s] for s in range(since + 1, until + 1) if s in by_seq]
            if len(frames) != until - since:
                log.error("room %s: replay %d..%d is missing %d events", room.id, since + 1, until,
                          until - since - len(frames))
        except Exception:  # noqa: BLE001
            log.exception("room %s: replay failed", room.id)
            frames = []
        conn.release(frames)

    def _detach_socket(self, room: LiveRoom, conn: Conn) -> None:
        member_id = conn.member_id
        if room.conns.get(member_id) is not conn:
            return  # replaced, kicked, left or ended
        del room.conns[member_id]
        if self._stopping or room.state.ended or member_id not in room.state.members:
            return
        self._start_grace(room, member_id)
        self._spawn(self.publish(room, presence_event(member_id, "away")))

    async def _receive(self, room: LiveRoom, conn: Conn) -> None:
        ws = conn.ws
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if conn.closing is not None:
                continue
            raw = message.get("text")
            if raw is None:
                raw = message.get("bytes") or b""
            if room.gone:
                room = await self._attach(room)
            await self.on_message(room, conn, raw)

    async def on_message(self, room: LiveRoom, conn: Conn, raw: str | bytes) -> None:
        member_id = conn.member_id
        bucket = room.buckets.get(member_id)
        if bucket is not None and not bucket.take():
            if bucket.refused >= FLOOD_CLOSE:
                conn.close(*_close_for("flooding"))
            else:
                conn.push(_RATE_LIMITED)
            return
        state = room.state
        try:
            msg = parse_client_message(raw, self.settings.room_max_message_bytes)
            if msg.type == "ping":
                conn.push(_PONG)
                return
            if msg.type == "stage" and msg.on:
                self._check_stage_session(msg.session_id, room.id, member_id, msg.ref)
            body = decide(state, member_id, msg, new_id)
        except RoomProtocolError as e:
            conn.push(dumps(e.to_event()))
            return
        if body is None:
            return
        body["at"] = now_ms()
        body["room_id"] = room.id
        try:
            if body["type"] in EPHEMERAL:
                body["seq"] = None
                await self.broker.signal(room.id, body)
            else:
                await self.publish(room, body)
        except Exception:  # noqa: BLE001 - the broker is down: say so, the room state is unchanged
            log.exception("room %s: publishing failed", room.id)
            error = {"type": "error", "code": "unavailable", "detail": "The room could not take the message; try again."}
            if msg.ref is not None:
                error["ref"] = msg.ref
            conn.push(dumps(error))

    def _check_stage_session(self, session_id: str | None, room_id: str, member_id: str, ref: str | None) -> None:
        """A live try-on session on this server that no other room member has on stage now (a session
        id that leaked cannot show its owner's look elsewhere meanwhile; once they step down, leave or
        the room ends, the session is free for its next room)."""
        registry = getattr(self.tryon, "registry", None)
        if registry is None or not session_id:
            raise RoomProtocolError("not_your_session", "There is no try-on session to put on stage.", ref)
        try:
            registry.get(session_id)
        except FitroomError:
            raise RoomProtocolError("not_your_session", "That is not a live try-on session of yours.", ref) from None
        for room in self.rooms.values():
            if room.state.ended:
                continue
            for m in room.state.members.values():
                if m.on_stage and m.stage_session == session_id and (room.id, m.id) != (room_id, member_id):
                    raise RoomProtocolError("not_your_session", "That try-on is on stage for another member.", ref)

    # ---- persistence -----------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        last_sweep = time.monotonic()
        while not self._stopping:
            t0 = time.monotonic()
            try:
                await asyncio.wait_for(self._flush_wake.wait(), self.settings.room_flush_s)
            except asyncio.TimeoutError:
                pass
            lag = time.monotonic() - t0 - self.settings.room_flush_s
            if lag > LAG_WARN_S:  # every socket of the process waited that long
                log.warning("rooms: the event loop was %.0f ms late", lag * 1000)
            self._flush_wake.clear()
            if self._stopping:
                return  # stop() stores the rest, snapshots included
            try:
                await self.flush()
                if time.monotonic() - last_sweep > 1.0:
                    last_sweep = time.monotonic()
                    await self._sweep()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("rooms: storing events failed")

    async def flush(self, snapshot: bool = False) -> None:
        """Stores the pending events of every room (and due snapshots) now."""
        if self._flush_lock is None:
            return
        async with self._flush_lock:
            now = time.monotonic()
            batches, rooms = [], []
            for room in list(self.rooms.values()):
                if not room.pending:
                    continue
                events, room.pending = room.pending, []
                snap = seq = None
                due = (snapshot or room.state.ended or room.state.seq - room.snapshot_seq >= SNAPSHOT_EVERY
                       or now - room.snapshot_at >= SNAPSHOT_EVERY_S)
                if due and room.state.seq > room.snapshot_seq:
                    snap, seq = to_json(room.state), room.state.seq
                batches.append((room.id, events, snap, seq))
                rooms.append(room)
            if not batches:
                return
            results = await asyncio.to_thread(store.append_batches, self.db, batches)
            for room, (_, events, snap, seq), error in zip(rooms, batches, results):
                if error is None:
                    room.failures = 0
                    if seq is not None:
                        room.snapshot_seq, room.snapshot_at = seq, now
                    continue
                room.failures += 1
                if room.failures >= STORE_RETRIES:
                    log.error("room %s: giving up storing %d events (seq %d..%d): %s", room.id, len(events),
                              events[0]["seq"], events[-1]["seq"], error)
                    room.failures = 0
                else:
                    log.warning("room %s: storing events failed (%s); will retry", room.id, error)
                    room.pending[:0] = events

    async def _sweep(self) -> None:
        """Drops rooms from memory: ended ones once closed and stored, others after IDLE_UNLOAD_S unused."""
        now = time.monotonic()
        for room in list(self.rooms.values()):
            if room.idle() and (room.state.ended or now - room.used_at > IDLE_UNLOAD_S):
                await self.unload(room)

    async def unload(self, room: LiveRoom) -> None:
        if self.rooms.get(room.id) is room:
            del self.rooms[room.id]
        room.gone = True
        try:
            await self.broker.unsubscribe(room.id, room.on_event)
        except Exception:  # noqa: BLE001
            log.exception("room %s: unsubscribe failed", room.id)


_RATE_LIMITED = dumps({"type": "error", "code": "rate_limited", "detail": "Too many messages: slow down."})
_PONG = dumps({"type": "pong"})


def _since(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        since = int(value)
    except ValueError:
        return None
    return since if since >= 0 else None


def ws_url(room_id: str, token: str) -> str:
    return f"/api/v1/rooms/{room_id}/ws?token={token}"
