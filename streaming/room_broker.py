"""The rooms' event broker: sequence numbers, the recent log and delivery to every server process.

`Broker` is the interface the hub uses (docs/rooms.md, "Interfaces between the modules").
`InProcessBroker` serves one server process: `publish` assigns the next seq, logs the event and
calls every subscriber of the room synchronously, on the event loop, before it returns, so seq order
is delivery order and nothing can come between. `make_broker(url)` gives `RedisBroker`
(`streaming/room_broker_redis.py`, imported only then) when a Redis URL is set, for several
processes sharing rooms.

Events handed to subscribers and returned by `recent` are shared dicts: read them, never change them.
"""

from __future__ import annotations

import collections
import logging
from typing import Callable, Protocol, runtime_checkable

log = logging.getLogger(__name__)
LOG_KEEP = 2000  # events of each room kept in the broker's recent log

Handler = Callable[[dict], None]


@runtime_checkable
class Broker(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, room_id: str, event: dict) -> dict:
        """Assigns the room's next seq (atomically across every process sharing the broker), keeps the
        event in the room's recent log (the last LOG_KEEP), delivers it to every subscriber of the room
        in every process; returns the event with "seq" set."""
        ...

    async def signal(self, room_id: str, event: dict) -> None:
        """An ephemeral event: delivered to every subscriber, no seq, not logged."""
        ...

    async def subscribe(self, room_id: str, handler: Handler) -> None:
        """`handler(event)` runs on the event loop; sequenced events reach it in seq order, no gaps."""
        ...

    async def unsubscribe(self, room_id: str, handler: Handler) -> None: ...

    async def recent(self, room_id: str, after_seq: int) -> list[dict] | None:
        """Logged events with seq > after_seq, or None when the log no longer reaches back that far."""
        ...

    async def last_seq(self, room_id: str) -> int | None:
        """The room's last assigned seq, or None when the broker knows nothing of the room."""
        ...

    async def init_seq(self, room_id: str, seq: int) -> None:
        """The counter starts at `seq` unless the broker already has a larger one (after a restart)."""
        ...

    async def hold(self, room_id: str, member_id: str) -> None:
        """This process answers for the member's presence now (their socket or grace timer is here)."""
        ...

    async def release(self, room_id: str, member_id: str) -> None:
        """The member has left: drops this process's hold on them (never another process's)."""
        ...

    async def orphans(self, members: dict[str, list[str]]) -> dict[str, list[str]]:
        """Of `members` (room id -> member ids), those held by a process that has stopped, each now
        held by this one: exactly one surviving process takes each over. Rooms with none are left out."""
        ...


class InProcessBroker:
    """The broker of a single process: counters, logs and subscribers in memory."""

    def __init__(self, log_keep: int = LOG_KEEP):
        self.log_keep = log_keep
        self._seq: dict[str, int] = {}
        self._log: dict[str, collections.deque] = {}
        self._subs: dict[str, list[Handler]] = {}

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self._subs.clear()

    def _deliver(self, room_id: str, event: dict) -> None:
        for handler in tuple(self._subs.get(room_id, ())):
            try:
                handler(event)
            except Exception:  # noqa: BLE001 - one subscriber's bug must not stop the others
                log.exception("room %s: a subscriber failed on %s", room_id, event.get("type"))

    async def publish(self, room_id: str, event: dict) -> dict:
        seq = self._seq.get(room_id, 0) + 1
        self._seq[room_id] = seq
        event = {**event, "seq": seq}
        room_log = self._log.get(room_id)
        if room_log is None:
            room_log = self._log[room_id] = collections.deque(maxlen=self.log_keep)
        room_log.append(event)
        self._deliver(room_id, event)
        return event

    async def signal(self, room_id: str, event: dict) -> None:
        self._deliver(room_id, event)

    async def subscribe(self, room_id: str, handler: Handler) -> None:
        subs = self._subs.setdefault(room_id, [])
        if handler not in subs:
            subs.append(handler)

    async def unsubscribe(self, room_id: str, handler: Handler) -> None:
        subs = self._subs.get(room_id)
        if subs and handler in subs:
            subs.remove(handler)
            if not subs:
                del self._subs[room_id]

    async def recent(self, room_id: str, after_seq: int) -> list[dict] | None:
        last = self._seq.get(room_id, 0)
        if after_seq >= last:
            return []
        room_log = self._log.get(room_id)
        if not room_log or room_log[0]["seq"] > after_seq + 1:
            return None
        start = after_seq + 1 - room_log[0]["seq"]  # seqs in the log are consecutive
        return [room_log[i] for i in range(max(start, 0), len(room_log))]

    async def last_seq(self, room_id: str) -> int | None:
        return self._seq.get(room_id)

    async def init_seq(self, room_id: str, seq: int) -> None:
        if self._seq.get(room_id, 0) < seq:
            self._seq[room_id] = seq
            # The log no longer joins up with the counter: events before it are the database's.
            self._log.pop(room_id, None)

    # One process holds every member: nobody is ever orphaned.
    async def hold(self, room_id: str, member_id: str) -> None:
        pass

    async def release(self, room_id: str, member_id: str) -> None:
        pass

    async def orphans(self, members: dict[str, list[str]]) -> dict[str, list[str]]:
        return {}

    def forget(self, room_id: str) -> None:
        """Drops a room's counter and log (an ended room); a later `init_seq` starts it again."""
        self._seq.pop(room_id, None)
        self._log.pop(room_id, None)


def make_broker(redis_url: str | None) -> Broker:
    """`RedisBroker(redis_url)` when a URL is given (several processes share rooms), else `InProcessBroker`."""
    if redis_url:
        from streaming.room_broker_redis import RedisBroker

        return RedisBroker(redis_url)
    return InProcessBroker()
