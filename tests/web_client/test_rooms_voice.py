"""Voice in a shared room (web_client/voice.js, docs/rooms.md "Voice"), in Debian's Chromium with a
fake microphone (`--use-fake-device-for-media-stream`: it beeps), against the real server.

Three shoppers in one room: Ana and Ben join voice, Cy does not. Ben hears Ana (a remote audio track
whose level, measured in Ben's page with an AnalyserNode, is not zero) and sees her talking; nothing
is asked of a microphone before "Join voice"; after Ben's socket drops and comes back he hears Ana
again; Cy gets no `rtc` frame and makes no peer connection; when Ana leaves voice, Ben's peer
connection to her closes.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from streaming.room_protocol import MAX_MESSAGE_BYTES, RTC_SDP_MAX
from tests.web_client.conftest import launch_chromium

# A fake microphone (a periodic beep) and camera, and no permission prompt.
FAKE_MEDIA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]

# Counts what the page asks of the microphone and the peer connections it makes, from before any
# script of the page runs.
SPY = """
window.__media = { gum: 0, pcs: [] };
if (navigator.mediaDevices) {
  const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (c) => { window.__media.gum += 1; return gum(c); };
}
const RealPC = window.RTCPeerConnection;
window.RTCPeerConnection = class extends RealPC {
  constructor(...args) { super(...args); window.__media.pcs.push(this); }
};
"""

# The level of member `id`'s voice as this page receives it: the peak of an AnalyserNode on the
# remote MediaStream (the one its <audio> element plays), over up to `ms`.
REMOTE_LEVEL = """async ([id, ms]) => {
  const audio = document.querySelector(`#room-voice-audio audio[data-member="${id}"]`);
  const stream = audio && audio.srcObject;
  if (!stream || !stream.getAudioTracks().length) return -1;
  const ctx = new AudioContext();
  await ctx.resume();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 2048;
  ctx.createMediaStreamSource(stream).connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  let peak = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms && peak < 0.05) {
    await new Promise((r) => setTimeout(r, 20));
    analyser.getFloatTimeDomainData(buf);
    for (const x of buf) peak = Math.max(peak, Math.abs(x));
  }
  await ctx.close();
  return peak;
}"""


@pytest.fixture(scope="module")
def voice_browser():
    """Chromium as the `browser` fixture launches it, with the fake microphone."""
    yield from launch_chromium(FAKE_MEDIA)


@pytest.fixture
def open_voice_page(voice_browser, server):
    """`open_voice_page(path)`: a page in its own context with the microphone allowed and SPY in it;
    `page.console_errors` and `page.ws_in` / `page.ws_out` (the room socket's frames, parsed)."""
    if "/api/v1/rooms" not in httpx.get(server + "/openapi.json", timeout=5).json().get("paths", {}):
        pytest.skip("the rooms API (/api/v1/rooms) is not there yet")
    contexts = []

    def open_(path: str):
        context = voice_browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["microphone"])
        contexts.append(context)
        context.add_init_script(SPY)
        pg = context.new_page()
        pg.console_errors, pg.ws_in, pg.ws_out = [], [], []
        pg.on("console", lambda m: pg.console_errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))

        def on_socket(ws):
            if "/rooms/" not in ws.url:
                return
            ws.on("framereceived", lambda f: pg.ws_in.append(_frame(f)))
            ws.on("framesent", lambda f: pg.ws_out.append(_frame(f)))

        pg.on("websocket", on_socket)
        pg.goto(server + path)
        pg.wait_for_selector("body[data-ready='true']", timeout=15_000)
        return pg

    yield open_
    for context in contexts:
        context.close()


def _frame(payload) -> dict:
    try:
        return json.loads(payload if isinstance(payload, str) else payload.decode("utf-8", "replace"))
    except ValueError:
        return {}


def _member(page, name: str):
    return page.locator("#room-members .member", has=page.locator(".m-name", has_text=re.compile(f"^{name}$")))


def _media(page) -> dict:
    return page.evaluate("({ gum: window.__media.gum, pcs: window.__media.pcs.length })")


def test_two_members_talk_and_a_third_hears_nothing(open_voice_page):
    a = open_voice_page("/")
    a.fill("#room-name", "Ana")
    a.locator("#room-create").click()
    a.wait_for_selector("#room-conn[data-state='open']")
    invite = a.locator("#room-invite").input_value()
    pages = {"Ben": None, "Cy": None}
    for name in pages:
        pg = open_voice_page(invite[invite.index("/?"):])
        pg.fill("#room-join-name", name)
        pg.locator("#room-join").click()
        pg.wait_for_selector("#room-conn[data-state='open']")
        pages[name] = pg
    b, c = pages["Ben"], pages["Cy"]
    for pg in (a, b, c):
        _member(pg, "Cy").wait_for()
    ana = a.evaluate("window.fitroom.room.client.memberId")
    ben = b.evaluate("window.fitroom.room.client.memberId")
    # Nothing is asked of a microphone, and no peer connection made, before "Join voice".
    assert [_media(pg) for pg in (a, b, c)] == [{"gum": 0, "pcs": 0}] * 3
    assert b.locator("#room-voice-toggle").inner_text() == "Join voice" and b.locator("#room-voice-mute").is_hidden()

    # Ana joins: the others see her in voice; Ben, not in voice yet, makes no peer and sends nothing.
    a.locator("#room-voice-toggle").click()
    a.wait_for_selector("#room-voice-toggle:text-is('Leave voice')")
    assert a.locator("#room-voice-mute").is_visible()
    for pg in (b, c):
        pg.wait_for_selector("#room-voice-who:text-is('In voice: Ana.')")
        _member(pg, "Ana").locator(".badge.voice").wait_for()
    assert _media(a) == {"gum": 1, "pcs": 0} and _media(b) == {"gum": 0, "pcs": 0}

    # Ben joins: one peer connection each way, and Ben plays Ana's voice.
    b.locator("#room-voice-toggle").click()
    b.wait_for_function("(id) => window.fitroom.room.voice.connected().includes(id)", arg=ana, timeout=15_000)
    a.wait_for_function("(id) => window.fitroom.room.voice.connected().includes(id)", arg=ben, timeout=15_000)
    assert _media(a) == {"gum": 1, "pcs": 1} and _media(b) == {"gum": 1, "pcs": 1}
    b.wait_for_selector(f"#room-voice-audio audio[data-member='{ana}']", state="attached")
    level = b.evaluate(REMOTE_LEVEL, [ana, 8000])
    assert level > 0.01, f"Ben hears nothing from Ana (peak {level})"
    # The fake microphone beeps: Ben sees Ana talking at some point (and Ana sees herself).
    _member(b, "Ana").locator(".badge.talking").wait_for(state="visible", timeout=10_000)
    _member(a, "Ana").locator(".badge.talking").wait_for(state="visible", timeout=10_000)
    a.wait_for_selector("#room-voice-who:text-is('In voice: you, Ben.')")
    b.wait_for_selector("#room-voice-who:text-is('In voice: you, Ana.')")
    c.wait_for_selector("#room-voice-who:text-is('In voice: Ana, Ben.')")

    # One offer and one answer (their candidates in them); each fits the limits with room to spare.
    sent = [f for pg in (a, b) for f in pg.ws_out if f.get("type") == "rtc"]
    sdps = [len(f["sdp"]["sdp"]) for f in sent if "sdp" in f]
    assert len(sdps) == 2 and max(sdps) < RTC_SDP_MAX / 2, sdps
    assert max(len(json.dumps(f)) for f in sent) < MAX_MESSAGE_BYTES / 2
    print(f"SDP sizes: {sdps}; rtc frames: {[sorted(set(f) - {'type', 'to', 'ref'}) for f in sent]}; remote peak: {level:.3f}")

    # Ben's socket drops and comes back: the peers are made afresh, and Ben hears Ana again.
    b.evaluate("(id) => { window.__before = window.fitroom.room.voice.peers.get(id).pc; }", ana)
    b.evaluate("() => window.fitroom.room.client.ws.close(4000, 'test')")
    b.wait_for_function("""(id) => {
      const p = window.fitroom.room.voice.peers.get(id);
      return window.__before.signalingState === 'closed' && p && p.pc.connectionState === 'connected';
    }""", arg=ana, timeout=15_000)
    assert b.locator("#room-conn").get_attribute("data-state") == "open"
    assert b.evaluate(REMOTE_LEVEL, [ana, 8000]) > 0.01

    # Another process takes Ben for gone while his socket stays open (docs/rooms.md, "Presence across
    # processes"): `presence away` about him reaches everyone, Ben included, then `online`. Ana drops
    # her peer with him; Ben drops his stale one and announces himself again: they connect afresh.
    def presence(pg, status):
        pg.evaluate("""([member, status]) => window.fitroom.room.client._emit('event', {
          event: { type: 'presence', status, member, reason: 'server_gone' }, replayed: false })""", [ben, status])

    b.evaluate("(id) => { window.__before = window.fitroom.room.voice.peers.get(id).pc; }", ana)
    sent_at = len(b.ws_out)
    presence(a, "away")
    presence(b, "away")
    presence(a, "online")
    presence(b, "online")
    b.wait_for_function("""(id) => {
      const p = window.fitroom.room.voice.peers.get(id);
      return window.__before.signalingState === 'closed' && p && p.pc.connectionState === 'connected';
    }""", arg=ana, timeout=15_000)
    a.wait_for_function("(id) => window.fitroom.room.voice.connected().includes(id)", arg=ben, timeout=15_000)
    assert [f for f in b.ws_out[sent_at:] if f.get("type") == "voice" and f.get("on") and "to" not in f]

    # Ben mutes: no `talking on` from him while muted.
    b.locator("#room-voice-mute").click()
    b.wait_for_selector("#room-voice-mute:text-is('Unmute')")
    assert b.evaluate("window.fitroom.room.voice.stream.getAudioTracks().every((t) => !t.enabled)")
    b.wait_for_timeout(200)  # frames sent before the click have been seen by then
    muted_at = len(b.ws_out)
    b.wait_for_timeout(1000)
    assert not [f for f in b.ws_out[muted_at:] if f.get("type") == "talking" and f.get("on")]
    assert b.evaluate("window.fitroom.room.voice.talking") is False

    # Ana leaves voice: Ben's peer connection to her closes, her <audio> goes, her microphone stops.
    b.evaluate("(id) => { window.__peerForAna = window.fitroom.room.voice.peers.get(id).pc; }", ana)
    a.locator("#room-voice-toggle").click()
    a.wait_for_selector("#room-voice-toggle:text-is('Join voice')")
    b.wait_for_function("() => window.__peerForAna.signalingState === 'closed'", timeout=5_000)
    assert b.evaluate("(id) => window.fitroom.room.voice.peers.has(id)", ana) is False
    b.wait_for_selector(f"#room-voice-audio audio[data-member='{ana}']", state="detached")
    b.wait_for_selector("#room-voice-who:text-is('In voice: you.')")
    assert a.evaluate("window.__media.pcs.every((pc) => pc.signalingState === 'closed')")
    assert a.evaluate("window.fitroom.room.voice.stream") is None
    _member(b, "Ana").locator(".badge.voice").wait_for(state="detached")

    # Cy, not in voice, made no peer connection, never used a microphone, and got no `rtc` frame;
    # each `rtc` went to its member only, from the other.
    assert _media(c) == {"gum": 0, "pcs": 0}
    assert not [f for f in c.ws_in if f.get("type") == "rtc"]
    assert not [f for f in c.ws_out if f.get("type") in ("rtc", "talking")]
    assert {f["member"] for f in b.ws_in if f.get("type") == "rtc"} == {ana}
    assert {f["member"] for f in a.ws_in if f.get("type") == "rtc"} == {ben}
    for pg in (a, b, c):
        assert pg.console_errors == [], pg.console_errors


def test_stop_while_the_microphone_is_asked_for(open_voice_page):
    """The room closes while "Join voice" waits for the microphone: when it comes, it is released at
    once; nothing is announced, no peer is made (not even with a member the page thought in voice)."""
    a = open_voice_page("/")
    a.fill("#room-name", "Ana")
    a.locator("#room-create").click()
    a.wait_for_selector("#room-conn[data-state='open']")
    a.evaluate("""() => {
      const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      window.__gum = { asked: 0 };
      navigator.mediaDevices.getUserMedia = (c) => {
        window.__gum.asked += 1;
        return new Promise((resolve) => { window.__gum.grant = () => real(c).then((s) => { window.__gum.stream = s; resolve(s); }); });
      };
    }""")
    a.locator("#room-voice-toggle").click()
    a.wait_for_function("() => window.__gum.asked === 1 && window.fitroom.room.voice.joining")
    voice_frames = lambda: [f for f in a.ws_out if f.get("type") in ("voice", "rtc")]  # noqa: E731
    a.evaluate("() => { window.__voice = window.fitroom.room.voice; window.__voice.inVoice.add('zz'); }")
    a.evaluate("() => window.fitroom.room.reset()")  # the room is left behind: voice.stop()
    a.evaluate("() => window.__gum.grant()")
    a.wait_for_function("() => window.__gum.stream && !window.__voice.joining")
    got = a.evaluate("""() => ({
      tracks: window.__gum.stream.getTracks().map((t) => t.readyState),
      joined: window.__voice.joined, stream: window.__voice.stream, meter: window.__voice.meter,
      peers: window.__voice.peers.size, pcs: window.__media.pcs.length })""")
    assert got == {"tracks": ["ended"], "joined": False, "stream": None, "meter": None, "peers": 0, "pcs": 0}
    assert voice_frames() == []
    assert a.console_errors == [], a.console_errors


def test_a_peer_not_connected_in_time_is_made_again(open_voice_page):
    """Lost signalling (an `rtc` refused, its error not shown) leaves a peer short of 'connected' and
    never 'failed': after CONNECT_MS it is closed and made again (CONNECT_MS shortened here)."""
    a = open_voice_page("/")
    got = a.evaluate("""async () => {
      const { VoiceChat } = await import('/voice.js');
      const setTimeoutReal = window.setTimeout;
      window.setTimeout = (f, ms, ...rest) => setTimeoutReal(f, ms === 15000 ? 2000 : ms, ...rest);
      const sent = [];
      const v = new VoiceChat({ send: (m) => sent.push(m), memberId: () => 'a', audioBox: document.createElement('div') });
      await v.join();
      v.onSignal({ type: 'voice', on: true, member: 'z' });  // I offer ('a' < 'z'); nothing ever answers
      const first = v.peers.get('z').pc;
      const offers = () => sent.filter((m) => m.type === 'rtc' && m.sdp && m.sdp.type === 'offer').length;
      const t0 = Date.now();
      while (offers() < 2 && Date.now() - t0 < 12000) await new Promise((r) => setTimeoutReal(r, 50));
      const got = { offers: offers(), first: first.signalingState, again: !!v.peers.get('z') && v.peers.get('z').pc !== first };
      v.stop();
      window.setTimeout = setTimeoutReal;
      return got;
    }""")
    assert got == {"offers": 2, "first": "closed", "again": True}
    assert a.console_errors == [], a.console_errors
