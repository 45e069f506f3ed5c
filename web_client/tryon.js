// One live try-on: the WebRTC peer connection (receive-only video + the `control` data channel),
// signalled over HTTP (POST /api/v1/tryon/{id}/offer), and a poller of the session's status.
// `VideoPeer` is the receive-only video part alone, also used by a room's stage (room.js).
//
// Events (EventTarget): 'status' (detail: the session JSON), 'stats' and 'error' (detail: the
// server's message on the channel), 'open' (the channel opened), 'state' (detail: connectionState).

import { getTryOn, rtcConfig, sendOffer } from './api.js';

const ICE_GATHER_MS = 2000;

function iceGathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { pc.removeEventListener('icegatheringstatechange', check); resolve(); };
    const check = () => { if (pc.iceGatheringState === 'complete') done(); };
    pc.addEventListener('icegatheringstatechange', check);
    setTimeout(done, ICE_GATHER_MS); // aiortc takes the candidates in the offer: no trickle
  });
}

/**
 * A receive-only video peer connection playing into `video`, signalled over HTTP by
 * `signal({sdp, type}) -> Promise<{sdp, type}>` (aiortc answers; no trickle ICE). With `control`,
 * it also opens the ordered `control` data channel of a try-on session.
 *
 * Events: 'open' (the channel opened), 'state' (detail: connectionState), and one per message type
 * received on the channel (detail: the message).
 */
export class VideoPeer extends EventTarget {
  constructor(video, signal, { control = false } = {}) {
    super();
    this.video = video;
    this.signal = signal;
    this.control = control;
    this.pc = null;
    this.channel = null;
    this.pending = [];
    this.closed = false;
  }

  async connect() {
    const { ice_servers: iceServers } = await rtcConfig();
    if (this.closed) return; // closed while the configuration came
    const pc = new RTCPeerConnection({ iceServers });
    this.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    if (this.control) {
      const channel = pc.createDataChannel('control', { ordered: true });
      this.channel = channel;
      channel.addEventListener('open', () => {
        for (const m of this.pending.splice(0)) channel.send(m);
        this.dispatchEvent(new CustomEvent('open'));
      });
      channel.addEventListener('message', (e) => {
        let msg;
        try { msg = JSON.parse(e.data); } catch { return; }
        if (msg && typeof msg.type === 'string') this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
      });
    }
    pc.addEventListener('track', (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      if (this.video.srcObject !== stream) this.video.srcObject = stream;
      this.video.play().catch(() => {}); // muted + playsinline: autoplay is allowed
    });
    pc.addEventListener('connectionstatechange', () => {
      this.dispatchEvent(new CustomEvent('state', { detail: pc.connectionState }));
    });
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc);
    const answer = await this.signal({ sdp: pc.localDescription.sdp, type: pc.localDescription.type });
    if (this.pc !== pc) return; // closed meanwhile
    await pc.setRemoteDescription(answer);
  }

  /** Sends a control message (queued until the channel opens). */
  send(msg) {
    const text = JSON.stringify(msg);
    if (this.channel && this.channel.readyState === 'open') this.channel.send(text);
    else this.pending.push(text);
  }

  get open() { return !!this.channel && this.channel.readyState === 'open'; }

  close() {
    this.closed = true;
    if (this.channel) this.channel.close();
    if (this.pc) this.pc.close();
    this.pc = null;
    this.channel = null;
    if (this.video.srcObject) this.video.srcObject = null;
  }
}

/** One live try-on: its video and control channel (POST /api/v1/tryon/{id}/offer). */
export class TryOnStream extends VideoPeer {
  constructor(id, video) {
    super(video, (offer) => sendOffer(id, offer), { control: true });
    this.id = id;
  }
}

/**
 * Polls GET /api/v1/tryon/{id} until `until(session)` holds (default: ready or failed), calling
 * onStatus with each answer. Returns the last session JSON; rejects on an API error.
 */
export async function watchStatus(id, onStatus, { until, interval = 250, signal } = {}) {
  const stop = until || ((s) => s.status === 'ready' || s.status === 'failed');
  for (;;) {
    if (signal && signal.aborted) throw new DOMException('aborted', 'AbortError');
    const s = await getTryOn(id);
    onStatus(s);
    if (stop(s)) return s;
    await new Promise((r) => setTimeout(r, interval));
  }
}
