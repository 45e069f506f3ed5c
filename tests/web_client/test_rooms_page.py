"""Shared rooms in the storefront page (web_client/room.js, docs/rooms.md), in Debian's Chromium.

- `RoomClient` alone against a scripted WebSocket: welcome, sequenced events, a drop and a resume
  with `since` (the replay goes to the history, nothing twice), a gap, close codes.
- Two browser contexts in one room against the real server: members, chat, "now trying", votes,
  the shared cart, a reload that resumes, the host's kick.
"""

from __future__ import annotations

import re

import httpx
import pytest


ROOMS_API = "/api/v1/rooms"

# A WebSocket stand-in the test drives from the page: `FakeSocket.all` holds every socket made.
FAKE_SOCKET = """
window.FakeSocket = class FakeSocket {
  constructor(url) { this.url = url; this.sent = []; this.closedWith = null; FakeSocket.all.push(this); }
  send(text) { this.sent.push(JSON.parse(text)); }
  close(code) { this.closedWith = code || 1000; }
  deliver(msg) { this.onmessage && this.onmessage({ data: JSON.stringify(msg) }); }
  drop(code = 1006) { this.onclose && this.onclose({ code, reason: '' }); }
};
window.FakeSocket.all = [];
"""


def _client_script(body: str) -> str:
    return """async () => {
      const { RoomClient } = await import('/room.js');
      %s
      const until = async (f, ms = 5000) => {
        const t0 = Date.now();
        while (!f()) { if (Date.now() - t0 > ms) throw new Error('timed out: ' + f); await new Promise((r) => setTimeout(r, 20)); }
      };
      const socketUrl = (id, token, since) => `ws://x/${id}?token=${token}` + (since === null || since === undefined ? '' : `&since=${since}`);
      const checkToken = async () => ({});
      %s
    }""" % (FAKE_SOCKET, body)


VIEW = """({ id: 'r1', name: '', host: 'a', locked: false, chat_muted_all: false, ended: false,
  members: [{ id: 'a', name: 'Ana', host: true, online: true, chat_muted: false, trying: null, trying_seq: null, on_stage: false },
            { id: 'b', name: 'Ben', host: false, online: true, chat_muted: false, trying: null, trying_seq: null, on_stage: false }],
  cart: [], votes: {}, stage: null, seq: SEQ })"""


def test_view_gives_my_own_vote(page):
    """A cold load (no history kept) still shows which way I voted, from the view's `mine`."""
    got = page.evaluate("""async () => {
      const { fromView } = await import('/room.js');
      const v = %s;
      v.members[0].trying_seq = 7;
      v.votes = { 7: { up: 1, down: 1, mine: -1 } };
      const r = fromView(v, 'b');
      return { mine: r.votes.get(7).get('b'), tally: r.tallies.get(7), anon: fromView(v).votes.has(7) };
    }""" % VIEW.replace("SEQ", "7"))
    assert got == {"mine": -1, "tally": {"up": 1, "down": 1}, "anon": False}
    assert page.console_errors == []


def test_welcome_keeps_the_views_vote_of_mine_over_the_history(page):
    """A welcome that is not a resume: the saved history says who voted what, but my own vote is the
    view's `mine` (the server's word), not an older vote of mine in the history."""
    got = page.evaluate(_client_script("""
      const v = %s;
      v.members[0].trying_seq = 7;
      v.votes = { 7: { up: 1, down: 1, mine: -1 } };
      const ev = (seq, member, value) => ({ type: 'vote', seq, room_id: 'r1', member, look: 7, value, at: 1700000000000 + seq });
      const c = new RoomClient({ roomId: 'r1', token: 'T', memberId: 'b', socketUrl, WebSocketImpl: FakeSocket, checkToken,
                                 history: [ev(5, 'b', 1), ev(6, 'a', 1)] });
      c.connect();
      FakeSocket.all[0].deliver({ type: 'welcome', member_id: 'b', seq: 8, room: v, resumed: false });
      return Object.fromEntries(c.room.votes.get(7));
    """ % VIEW.replace("SEQ", "8")))
    assert got == {"a": 1, "b": -1}
    assert page.console_errors == []


def test_room_client_resume_replay_gap_and_close(page):
    """The client's sequence bookkeeping, with the server scripted."""
    got = page.evaluate(_client_script("""
      const view = (seq) => %s;
      const ev = (seq, type, member, more = {}) => ({ type, seq, room_id: 'r1', member, at: 1700000000000 + seq, ...more });
      const c = new RoomClient({ roomId: 'r1', token: 'T', socketUrl, WebSocketImpl: FakeSocket, checkToken });
      const seen = [];
      c.addEventListener('event', (e) => seen.push([e.detail.event.seq, e.detail.replayed]));
      const statuses = [];
      c.addEventListener('status', (e) => statuses.push(e.detail));
      c.connect();
      const s1 = FakeSocket.all[0];
      c.send({ type: 'chat', text: 'queued before welcome' });
      s1.deliver({ type: 'welcome', member_id: 'b', seq: 3, room: view(3), resumed: false });
      s1.deliver(ev(4, 'chat', 'a', { text: 'hi' }));
      s1.deliver(ev(5, 'trying', 'a', { product_id: null, garment: 'tshirt', size: 'M', colourway: 'navy', name: 'T-shirt' }));
      s1.deliver(ev(5, 'trying', 'a', { product_id: null, garment: 'dress', size: 'M', colourway: 'navy', name: 'Dress' }));  // a duplicate
      s1.deliver({ type: 'typing', seq: null, room_id: 'r1', member: 'a', on: true });
      const afterFirst = { seq: c.seq, look: c.room.members.get('a').trying.name, sent: s1.sent.map((m) => m.type) };
      // The socket drops: the client reconnects with since=5; the server's view is at 7 and it replays 6..7.
      s1.drop(1006);
      await until(() => FakeSocket.all.length === 2);
      const s2 = FakeSocket.all[1];
      const v7 = view(7);
      v7.members[0].trying = { product_id: null, garment: 'tshirt', size: 'L', colourway: 'red', name: 'T-shirt' };
      v7.members[0].trying_seq = 7;
      v7.votes = {};
      s2.deliver({ type: 'welcome', member_id: 'b', seq: 7, room: v7, resumed: true });
      s2.deliver(ev(6, 'chat', 'a', { text: 'missed while away' }));
      s2.deliver(ev(7, 'trying', 'a', { product_id: null, garment: 'tshirt', size: 'L', colourway: 'red', name: 'T-shirt' }));
      s2.deliver(ev(8, 'vote', 'b', { look: 7, value: 1, tally: { up: 1, down: 0 } }));
      s2.deliver(ev(8, 'vote', 'b', { look: 7, value: 1, tally: { up: 1, down: 0 } }));  // again: ignored
      const afterResume = { seq: c.seq, viewSeq: c.viewSeq, size: c.room.members.get('a').trying.size,
                            tally: c.room.tallies.get(7), chats: c.history.filter((e) => e.type === 'chat').map((e) => e.text) };
      // A gap (9 missing): the client resumes at once from 8.
      s2.deliver(ev(10, 'chat', 'a', { text: 'after a gap' }));
      await until(() => FakeSocket.all.length === 3);
      const s3 = FakeSocket.all[2];
      s3.deliver({ type: 'welcome', member_id: 'b', seq: 10, room: view(10), resumed: true });
      s3.deliver(ev(9, 'cart_added', 'a', { item: { item_id: 'i1', product_id: null, garment: 'tshirt', size: 'L', colourway: 'red', qty: 1, name: 'T-shirt', added_by: 'a' } }));
      s3.deliver(ev(10, 'chat', 'a', { text: 'after a gap' }));
      // Kicked: closed for good, no reconnect.
      s3.drop(4403);
      await new Promise((r) => setTimeout(r, 600));
      return { afterFirst, afterResume, urls: FakeSocket.all.map((s) => s.url), seen, statuses,
               closed: c.closed, sockets: FakeSocket.all.length, seq: c.seq,
               history: c.history.map((e) => [e.seq, e.type]) };
    """ % VIEW.replace("SEQ", "seq")))
    assert got["afterFirst"] == {"seq": 5, "look": "T-shirt", "sent": ["chat"]}  # the queued chat went after welcome
    assert got["urls"] == ["ws://x/r1?token=T", "ws://x/r1?token=T&since=5", "ws://x/r1?token=T&since=8"]
    assert got["afterResume"] == {"seq": 8, "viewSeq": 8, "size": "L", "tally": {"up": 1, "down": 0},
                                  "chats": ["hi", "missed while away"]}
    # Every event once, in order; the replays flagged.
    assert got["seen"] == [[4, False], [5, False], [6, True], [7, True], [8, False], [9, True], [10, True]]
    assert got["history"] == [[4, "chat"], [6, "chat"], [8, "vote"], [9, "cart_added"], [10, "chat"]]
    assert got["closed"]["reason"] == "kicked" and got["sockets"] == 3 and got["seq"] == 10
    assert got["statuses"][:2] == ["connecting", "open"] and "reconnecting" in got["statuses"]
    assert got["statuses"][-1] == "closed"
    assert page.console_errors == []


# -- two shoppers in one room, against the real server ------------------------------------------------

def _has_rooms_api(server) -> bool:
    paths = httpx.get(server + "/openapi.json", timeout=5).json().get("paths", {})
    return ROOMS_API in paths


@pytest.fixture
def rooms(server):
    if not _has_rooms_api(server):
        pytest.skip("the rooms API (/api/v1/rooms) is not there yet")
    return server


def _member(page, name: str):
    return page.locator("#room-members .member", has=page.locator(".m-name", has_text=re.compile(f"^{name}$")))


def test_two_shoppers_share_a_room(rooms, open_page):
    a = open_page("/")
    # A opens a room: the invite link shows, A is the host.
    assert a.locator("#room-create-form").is_visible()
    a.fill("#room-name", "Ana")
    a.locator("#room-create").click()
    a.wait_for_selector("#room[data-state='live']")
    invite = a.locator("#room-invite").input_value()
    assert re.search(r"/\?room=[\w-]+&invite=[\w-]+$", invite), invite
    a.wait_for_selector("#room-conn[data-state='open']")
    assert a.locator("#room-host").is_visible()
    assert _member(a, "Ana").locator(".badge.host").is_visible()
    assert a.locator("#cart-add").is_visible()
    a.locator("#room-copy").click()
    a.wait_for_selector("#room-status:has-text('link')")  # copied, or "select the link" without clipboard access

    # B opens the invite, gives a name and joins.
    b = open_page(invite)
    assert b.locator("#room-join-form").is_visible()
    b.fill("#room-join-name", "Ben")
    b.locator("#room-join-name").press("Enter")
    b.wait_for_selector("#room-conn[data-state='open']")
    _member(b, "Ana").wait_for()
    _member(a, "Ben").wait_for()
    assert _member(b, "Ana").locator(".badge.host").is_visible()
    assert _member(a, "Ben").locator(".m-presence").inner_text() == "online"
    assert b.locator("#room-host").is_hidden()  # host controls: the host's only
    assert b.locator("#room-invite-row").is_hidden() or b.locator("#room-invite").input_value()

    # Chat both ways (Enter sends); B sees A typing first.
    a.fill("#room-chat-input", "Which one, the navy or the red?")
    b.wait_for_selector("#room-typing:has-text('Ana is typing')")
    a.locator("#room-chat-input").press("Enter")
    b.wait_for_selector("#room-chat .chat:has-text('Which one, the navy or the red?')")
    assert b.locator("#room-chat .chat").last.locator(".who").inner_text() == "Ana"
    b.wait_for_function("() => document.getElementById('room-typing').textContent === ''")
    b.fill("#room-chat-input", "The navy!")
    b.locator("#room-chat-input").press("Enter")
    a.wait_for_selector("#room-chat .chat:has-text('The navy!')")
    assert a.locator("#room-chat .chat").last.locator(".who").inner_text() == "Ben"

    # A shows what they are trying (the page's choices: the dress, size L, red); B votes it up.
    a.locator("#garments .garment[data-garment='dress']").click()
    a.locator("#sizes .chip[data-value='L']").click()
    a.locator("#colourways .chip[data-value='red']").click()
    a.locator("#room-share-look").click()
    trying = _member(b, "Ana").locator(".m-trying")
    trying.wait_for()
    assert trying.locator(".m-look").inner_text() == "Dress"
    assert trying.locator(".m-size").inner_text() == "size L"
    assert trying.locator(".m-colour").inner_text().strip() == "red"
    assert trying.locator(".m-colour .swatch").count() == 1
    trying.locator("button.vote[data-vote='up']").click()
    _member(a, "Ana").locator(".tally", has_text="1 up · 0 down").wait_for()
    b.wait_for_selector("button.vote[data-vote='up'][aria-pressed='true']")
    # The list was drawn again: the keyboard focus is still on the vote button.
    assert b.evaluate("document.activeElement.dataset.key").endswith(":1")

    # B adds a look to the shared cart (the button beside "Try it on"); A sees it and removes it.
    b.locator("#garments .garment[data-garment='trousers']").click()
    b.locator("#sizes .chip[data-value='S']").click()
    b.locator("#cart-add").click()
    item = a.locator("#room-cart .cart-item")
    item.wait_for()
    assert "Trousers" in item.inner_text() and "size S" in item.inner_text()
    assert item.locator(".ci-who").inner_text() == "added by Ben"
    b.wait_for_selector("#room-cart .cart-item:has-text('added by you')")
    item.get_by_role("button", name=re.compile("Remove Trousers")).click()
    a.wait_for_selector("#room-cart .cart-item", state="detached")
    b.wait_for_selector("#room-cart .cart-item", state="detached")
    assert b.locator("#room-cart-empty").is_visible()

    # B's socket drops; A chats meanwhile and sees B away; B resumes with `since` and gets the missed
    # line once, and is online again.
    b.evaluate("""() => {
      const c = window.fitroom.room.client;
      c.realConnect = c.connect; c.connect = () => {};  // hold the reconnect back for a moment
      c.ws.close(4000, 'test');
    }""")
    b.wait_for_selector("#room-conn[data-state='reconnecting']")
    a.wait_for_selector("#room-members .member:has-text('Ben') .m-presence:text-is('away')")
    a.fill("#room-chat-input", "Sent while you were away")
    a.locator("#room-chat-input").press("Enter")
    a.wait_for_selector("#room-chat .chat:has-text('Sent while you were away')")
    b.evaluate("() => { const c = window.fitroom.room.client; c.connect = c.realConnect; c.connect(); }")
    b.wait_for_selector("#room-conn[data-state='open']")
    b.wait_for_selector("#room-chat .chat:has-text('Sent while you were away')")
    a.wait_for_selector("#room-members .member:has-text('Ben') .m-presence:text-is('online')")
    assert b.locator("#room-chat .chat .text").all_inner_texts() == [
        "Which one, the navy or the red?", "The navy!", "Sent while you were away"]

    # B reloads: still a member (no join form), the chat history intact, the vote and look kept.
    b.reload()
    b.wait_for_selector("body[data-ready='true']")
    b.wait_for_selector("#room-conn[data-state='open']")
    assert b.locator("#room-join-form").is_hidden()
    assert b.locator("#room-chat .chat .text").all_inner_texts() == [
        "Which one, the navy or the red?", "The navy!", "Sent while you were away"]
    assert _member(b, "Ana").locator(".m-look").inner_text() == "Dress"
    assert _member(b, "Ana").locator(".tally").inner_text() == "1 up · 0 down"
    assert _member(b, "Ana").locator("button.vote[data-vote='up']").get_attribute("aria-pressed") == "true"
    b.fill("#room-chat-input", "Back again")
    b.locator("#room-chat-send").click()
    a.wait_for_selector("#room-chat .chat:has-text('Back again')")
    assert a.locator("#room-chat .chat .text").all_inner_texts() == [
        "Which one, the navy or the red?", "The navy!", "Sent while you were away", "Back again"]
    # One Ben, online, in A's list.
    assert _member(a, "Ben").count() == 1
    a.wait_for_selector("#room-members .member:has-text('Ben') .m-presence:text-is('online')")

    # A reacts; B sees it briefly.
    a.locator("#room-reactions button[aria-label='React: Fire']").click()
    b.wait_for_selector("#room-bursts .burst:has-text('Ana')")
    assert "🔥" in b.locator("#room-bursts .burst").last.inner_text()

    # The host removes B: B is told clearly, and A's list has only Ana.
    _member(a, "Ben").get_by_role("button", name="Remove Ben from the room").click()
    b.wait_for_selector("#room-closed:visible")
    assert "removed you" in b.locator("#room-closed-text").inner_text()
    a.wait_for_selector("#room-members .member:has-text('Ben')", state="detached")
    assert a.locator("#room-members .member").count() == 1
    assert a.console_errors == [] and b.console_errors == []


def _join(open_page, invite: str, name: str):
    pg = open_page(invite)
    pg.fill("#room-join-name", name)
    pg.locator("#room-join").click()
    pg.wait_for_selector("#room-conn[data-state='open']")
    return pg


def _create(open_page, name: str):
    pg = open_page("/")
    pg.fill("#room-name", name)
    pg.locator("#room-create").click()
    pg.wait_for_selector("#room-conn[data-state='open']")
    return pg, pg.locator("#room-invite").input_value()


def test_host_controls(rooms, open_page):
    a, invite = _create(open_page, "Ana")
    b = _join(open_page, invite, "Ben")
    _member(a, "Ben").wait_for()

    # Mute Ben's chat, then let him chat again.
    _member(a, "Ben").get_by_role("button", name="Mute chat").click()
    b.wait_for_selector("#room-muted-note:visible")
    assert b.locator("#room-chat-input").is_disabled()
    _member(a, "Ben").locator(".badge.muted-badge").wait_for()
    _member(a, "Ben").get_by_role("button", name="Unmute chat").click()
    b.wait_for_selector("#room-chat-input:enabled")

    # Hand over: Ben is the host now, with the controls; Ana has none.
    _member(a, "Ben").get_by_role("button", name="Make host").click()
    b.wait_for_selector("#room-host:visible")
    a.wait_for_selector("#room-host", state="hidden")
    _member(a, "Ben").locator(".badge.host").wait_for()
    assert _member(a, "Ana").locator(".badge.host").count() == 0
    assert a.locator("#room-chat .sys", has_text="Ben is now the host.").count() == 1

    # Ben locks the room: a third shopper is turned away with the reason.
    b.locator("#room-lock").check()
    a.wait_for_selector("#room-locked-note:visible")
    c = open_page(invite)
    c.fill("#room-join-name", "Cy")
    c.locator("#room-join").click()
    c.wait_for_selector("#room-status:has-text('locked')")
    assert c.locator("#room-join-form").is_visible()

    # Ana tries a host action she no longer has: the room says why (the server's refusal).
    a.evaluate("window.fitroom.room.send({ type: 'lock', on: false })")
    a.wait_for_selector("#room-status.error:has-text('Only the host')")

    # Ben ends the room (with a confirmation): everyone is told, and the panel offers a new room.
    b.locator("#room-end").click()
    b.locator("#room-end-yes").click()
    for pg in (a, b):
        pg.wait_for_selector("#room-closed:visible")
        assert pg.locator("#room-closed-text").inner_text() == "The host ended the room."
    a.locator("#room-again").click()
    assert a.locator("#room-create-form").is_visible()
    assert a.evaluate("sessionStorage.getItem('fitroom.room')") is None
    assert a.console_errors == [] and b.console_errors == []
    assert all("423" in e for e in c.console_errors), c.console_errors  # the browser logs the refused join


def _has_tryon_api(server) -> bool:
    return "/api/v1/tryon" in httpx.get(server + "/openapi.json", timeout=5).json().get("paths", {})


def test_stage_shows_the_look_and_nothing_private(rooms, open_page):
    """A tries a garment on and goes on stage; B watches the stage video. B's socket never carries
    A's try-on session id, avatar or measurements; A's socket sends none."""
    if not _has_tryon_api(rooms):
        pytest.skip("the try-on API is not there yet")
    a, invite = _create(open_page, "Ana")
    sent = []
    a.on("websocket", lambda ws: ws.on("framesent", lambda f: sent.append(f)))
    b = open_page(invite)
    received = []
    b.on("websocket", lambda ws: ws.on("framereceived", lambda f: received.append(f)))
    b.fill("#room-join-name", "Ben")
    b.locator("#room-join").click()
    b.wait_for_selector("#room-conn[data-state='open']")
    # Seen only after a (re)connect: the websocket listener of A is on from now on.
    a.reload()
    a.wait_for_selector("#room-conn[data-state='open']")

    assert a.locator("#room-stage-toggle").is_disabled()  # no try-on yet
    a.locator("#garments .garment[data-garment='tshirt']").click()
    a.locator("#start").click()
    # The try-on starting tells the room "now trying".
    _member(b, "Ana").locator(".m-look", has_text="T-shirt").wait_for(timeout=10_000)
    a.wait_for_function("() => document.getElementById('video').currentTime > 0.3", timeout=60_000)
    a.wait_for_selector("#room-stage-toggle:enabled")
    a.locator("#room-stage-toggle").click()
    a.wait_for_selector("#room-stage-who:has-text('On stage: Ana (you)')")
    assert a.locator("#room-stage-toggle").inner_text() == "Leave stage"
    b.wait_for_selector("#room-stage-who:has-text('On stage: Ana')")
    _member(b, "Ana").locator(".badge.stage").wait_for()
    b.locator("#room-watch").click()
    b.wait_for_function("() => document.getElementById('room-video').currentTime > 0.3", timeout=30_000)
    assert b.locator("#room-watch").inner_text() == "Stop watching"
    assert b.evaluate("""() => {
      const v = document.getElementById('room-video'), c = document.createElement('canvas');
      c.width = 64; c.height = 36; const ctx = c.getContext('2d'); ctx.drawImage(v, 0, 0, 64, 36);
      const d = ctx.getImageData(0, 0, 64, 36).data; let lo = 255, hi = 0;
      for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); }
      return hi - lo;
    }""") > 20, "the stage video is blank"

    # Pointing on the shared view: Ben's pointer over the stage video shows on Ana's try-on, labelled,
    # at the same place; Ana's on her try-on shows over Ben's stage video.
    b.locator("#room-stage-view").scroll_into_view_if_needed()
    box = b.locator("#room-stage-view").bounding_box()
    b.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.5)
    b.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6, steps=4)
    dot = a.locator("#stage .room-pointer", has_text="Ben")
    dot.wait_for(timeout=5_000)
    left = a.evaluate("() => parseFloat(document.querySelector('#stage .room-pointer').style.left)")
    assert 20 <= left <= 35, left
    a.locator("#stage").scroll_into_view_if_needed()
    box = a.locator("#stage").bounding_box()
    a.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.4, steps=3)
    b.locator("#room-stage-view .room-pointer", has_text="Ana").wait_for(timeout=5_000)
    dot.wait_for(state="detached", timeout=6_000)  # Ben stopped moving: his pointer goes

    # A leaves the stage: B's video stops.
    a.locator("#room-stage-toggle").click()
    b.wait_for_selector("#room-stage-who:text-is('Nobody is on stage.')")
    b.wait_for_selector("#room-video", state="hidden")
    assert b.locator("#room-watch").inner_text() == "Watch"

    session_id = a.evaluate("window.fitroom.state.session.id")
    payloads = [f if isinstance(f, str) else f.decode("utf-8", "replace") for f in received]
    assert any('"type":"stage"' in p.replace(" ", "") for p in payloads)
    for text in payloads:
        assert session_id not in text and "session_id" not in text and "avatar" not in text, text
    mine = [f if isinstance(f, str) else f.decode("utf-8", "replace") for f in sent]
    assert any('"stage"' in m for m in mine)
    for text in mine:
        assert not any(w in text for w in ("avatar", "measure", "height", "chest", "waist", "hips")), text
    assert a.console_errors == [] and b.console_errors == []
