// Voice chat in a shared room (docs/rooms.md, "Voice"): a WebRTC audio mesh between the members who
// joined voice, signalled through the room's WebSocket.
//
// - Nothing leaves the page before "Join voice": the microphone is asked for then, and only then.
// - Joining announces `{type: 'voice', on: true}` to the room; each member already in voice answers
//   `{type: 'voice', on: true, to: me}` (that member alone). Of each pair of members in voice, the one
//   with the smaller member id makes the offer, so two offers never cross (no glare).
// - `{type: 'rtc', to, sdp}` / `{type: 'rtc', to, candidate}` carry the offer, the answer and late ICE
//   candidates to one member; the server delivers them to that member's socket alone. An SDP waits
//   (up to ICE_GATHER_MS) for its candidates, so most peers take one message each way: the room's
//   rate limit counts every message.
// - The microphone's level (a WebAudio AnalyserNode) says `talking` on and off, with hysteresis, at
//   most a few times a second, never while muted.
// - A peer is closed when its member leaves voice, leaves the room, or drops (presence away).
//
// No DOM but the <audio> elements of the remote voices in `audioBox`. Events: 'change' (joined,
// muted, who is in voice, peers), 'talking' (detail: bool, my own talking state), 'error' (detail: text).

const ICE_GATHER_MS = 1000; // an SDP waits this long for its candidates; later ones trickle
const METER_MS = 50; // the microphone's level is read this often
const FFT_SIZE = 2048; // samples per read (~43 ms at 48 kHz)
const TALK_ON = 0.02; // RMS over which I am talking ...
const TALK_OFF = 0.01; // ... and under which I may stop (hysteresis)
const TALK_HOLD_MS = 900; // quiet this long before `talking off`: pauses between words are not silence
const TALK_GAP_MS = 400; // at most one `talking` message this often
const TALK_REFRESH_MS = 2500; // while talking, `on` again this often (others clear it after TALKING_TTL_MS)
export const TALKING_TTL_MS = 4000; // a member's "talking" badge goes without a fresh `on` by then
const RETRY_MS = 1500; // a failed peer is made again after this (by its offerer)
// A peer not connected by then has failed: a lost `rtc` (refused as rate_limited, say: voice's errors
// are not shown) leaves it in 'new' or 'have-local-offer', which never turns 'failed' by itself.
const CONNECT_MS = 15000;
// Errors about voice messages carry this ref: the panel leaves them to voice (a peer who just left).
export const VOICE_REF = 'voice';

/** The local microphone's level, read every METER_MS: `onLevel(rms)`. */
class LevelMeter {
  constructor(stream, onLevel) {
    this.ctx = new AudioContext();
    this.ctx.resume().catch(() => {}); // created in the click's task: allowed to run
    const source = this.ctx.createMediaStreamSource(stream);
    const analyser = this.ctx.createAnalyser();
    analyser.fftSize = FFT_SIZE;
    source.connect(analyser); // not to the destination: I must not hear myself
    const buf = new Float32Array(analyser.fftSize);
    this.timer = setInterval(() => {
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (let i = 0; i < buf.length; i += 1) sum += buf[i] * buf[i];
      onLevel(Math.sqrt(sum / buf.length));
    }, METER_MS);
  }

  close() {
    clearInterval(this.timer);
    this.ctx.close().catch(() => {});
  }
}

/** The connection to one other member in voice: my microphone out, their voice into an <audio>. */
class VoicePeer {
  constructor(chat, member) {
    this.chat = chat;
    this.member = member;
    this.offerer = chat.me < member; // the smaller id offers
    this.pc = new RTCPeerConnection({ iceServers: chat.iceServers });
    this.sdpSent = false; // candidates found after the SDP went trickle one by one ...
    this.sentComplete = false; // ... unless it had them all
    this.chain = Promise.resolve(); // incoming signalling, strictly in order
    this.audio = null;
    for (const track of chat.stream.getAudioTracks()) this.pc.addTrack(track, chat.stream);
    this.pc.addEventListener('icecandidate', (e) => {
      // The null (no more candidates) can follow the SDP that already said it: not sent again.
      if (this.sdpSent && !(this.sentComplete && !e.candidate)) this.send({ candidate: e.candidate ? e.candidate.toJSON() : null });
    });
    this.pc.addEventListener('track', (e) => this.play(e.streams[0] || new MediaStream([e.track])));
    this.pc.addEventListener('connectionstatechange', () => {
      if (this.pc.connectionState === 'connected') clearTimeout(this.timer);
      chat.peerState(this);
    });
    this.timer = setTimeout(() => {
      if (this.pc.connectionState !== 'connected') chat.peerFailed(this, `not connected after ${CONNECT_MS} ms`);
    }, CONNECT_MS);
  }

  send(payload) { this.chat.send({ type: 'rtc', to: this.member, ...payload }); }

  play(stream) {
    if (!this.audio) {
      this.audio = document.createElement('audio');
      this.audio.autoplay = true;
      this.audio.dataset.member = this.member;
      this.chat.audioBox.append(this.audio);
    }
    if (this.audio.srcObject !== stream) this.audio.srcObject = stream;
    this.audio.play().catch(() => {}); // the click on "Join voice" allows it
  }

  /** My description (offer or answer) with the candidates gathered by then. */
  async sendDescription() {
    await this.pc.setLocalDescription();
    await gathered(this.pc);
    if (this.pc.signalingState === 'closed') return;
    const d = this.pc.localDescription;
    this.sdpSent = true;
    this.sentComplete = this.pc.iceGatheringState === 'complete';
    this.send({ sdp: { type: d.type, sdp: d.sdp } }); // candidates still to come trickle, then null
  }

  offer() { this.run(() => this.sendDescription()); }

  /** An `rtc` message from this member. */
  take(e) {
    this.run(async () => {
      if (e.sdp && e.sdp.type === 'offer') {
        if (this.pc.signalingState !== 'stable') return; // not expected: the offerer is the other one
        await this.pc.setRemoteDescription(e.sdp);
        await this.sendDescription();
      } else if (e.sdp && e.sdp.type === 'answer') {
        if (this.pc.signalingState === 'have-local-offer') await this.pc.setRemoteDescription(e.sdp);
      } else if ('candidate' in e && this.pc.remoteDescription) {
        // null: no more candidates. A candidate this browser cannot use is skipped, not fatal.
        await this.pc.addIceCandidate(e.candidate || undefined).catch(() => {});
      }
    });
  }

  run(step) {
    this.chain = this.chain.then(step).catch((err) => {
      if (this.pc.signalingState !== 'closed') this.chat.peerFailed(this, err);
    });
  }

  close() {
    clearTimeout(this.timer);
    this.pc.close();
    if (this.audio) { this.audio.srcObject = null; this.audio.remove(); }
    this.audio = null;
  }
}

function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => { if (pc.iceGatheringState === 'complete') done(); };
    const timer = setTimeout(() => done(), ICE_GATHER_MS);
    function done() { clearTimeout(timer); pc.removeEventListener('icegatheringstatechange', check); resolve(); }
    pc.addEventListener('icegatheringstatechange', check);
  });
}

/**
 * One member's voice: `send(msg)` sends a room message, `memberId()` is my member id, `audioBox`
 * holds the remote <audio> elements, `iceServers` for the peer connections.
 */
export class VoiceChat extends EventTarget {
  constructor({ send, memberId, audioBox, iceServers = [], getUserMedia = null }) {
    super();
    this.sendRoom = send;
    this.memberId = memberId;
    this.audioBox = audioBox;
    this.iceServers = iceServers;
    this.getUserMedia = getUserMedia || ((c) => navigator.mediaDevices.getUserMedia(c));
    this.joined = false;
    this.joining = false;
    this.generation = 0; // stop() moves it on: a join still waiting for the microphone then is void
    this.muted = false;
    this.stream = null;
    this.meter = null;
    this.peers = new Map(); // member id -> VoicePeer
    this.inVoice = new Set(); // the other members who said they are in voice
    this.talking = false; // what the meter hears (false while muted)
    this.talkingSent = false; // what the room was last told
    this.lastLoud = 0;
    this.lastTalkSent = 0;
  }

  get me() { return this.memberId(); }

  send(msg) { this.sendRoom({ ...msg, ref: VOICE_REF }); }

  _emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  /** "Join voice": the microphone (asked for now), then the announcement; peers follow the answers. */
  async join() {
    if (this.joined || this.joining) return;
    this.joining = true;
    const generation = this.generation;
    let stream;
    try {
      stream = await this.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true }, video: false });
    } catch (e) {
      this.joining = false;
      if (this.generation !== generation) { this._emit('change'); return; } // stopped meanwhile: nothing to say
      this._emit('error', e && e.name === 'NotAllowedError' ? 'Voice needs your microphone: allow it to join.' : `No microphone: ${e.message || e}`);
      this._emit('change');
      return;
    }
    this.joining = false;
    if (this.generation !== generation) {
      // stop() came while the permission prompt was up (the room closed, another room opened): the
      // microphone goes back at once, and nothing is announced or connected.
      for (const t of stream.getTracks()) t.stop();
      this._emit('change');
      return;
    }
    this.stream = stream;
    this.joined = true;
    this.muted = false;
    this.meter = new LevelMeter(stream, (level) => this.onLevel(level));
    this.send({ type: 'voice', on: true });
    for (const id of this.inVoice) this.connect(id);
    this._emit('change');
  }

  /** "Leave voice": peers closed, the microphone released. */
  leave() {
    if (!this.joined) return;
    this.setTalking(false, true);
    this.send({ type: 'voice', on: false });
    this.stop();
  }

  /** Everything off without a word to the room (the room is closed, or the page is going). */
  stop() {
    this.generation += 1; // a join still waiting for the microphone is void
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
    if (this.meter) this.meter.close();
    this.meter = null;
    if (this.stream) for (const t of this.stream.getTracks()) t.stop();
    this.stream = null;
    this.joined = false;
    this.talking = this.talkingSent = false;
    this._emit('talking', false);
    this._emit('change');
  }

  setMuted(muted) {
    if (!this.joined) return;
    this.muted = !!muted;
    for (const t of this.stream.getAudioTracks()) t.enabled = !this.muted; // peers get silence
    if (this.muted) this.setTalking(false, true);
    this._emit('change');
  }

  // -- talking --------------------------------------------------------------------------------------

  onLevel(level) {
    if (!this.joined) return;
    const now = Date.now();
    if (!this.muted && level > (this.talking ? TALK_OFF : TALK_ON)) this.lastLoud = now;
    const talking = !this.muted && now - this.lastLoud < TALK_HOLD_MS && this.lastLoud > 0;
    this.setTalking(talking);
  }

  /** My talking state; the room is told on a change or a refresh, at most every TALK_GAP_MS. */
  setTalking(on, now = false) {
    if (on !== this.talking) { this.talking = on; this._emit('talking', on); }
    const t = Date.now();
    const due = on !== this.talkingSent || (on && t - this.lastTalkSent >= TALK_REFRESH_MS);
    if (!due || (!now && t - this.lastTalkSent < TALK_GAP_MS)) return;
    this.talkingSent = on;
    this.lastTalkSent = t;
    this.sendRoom({ type: 'talking', on });
  }

  // -- the room's messages --------------------------------------------------------------------------

  /** An ephemeral event of the room (`voice`, `rtc`). */
  onSignal(e) {
    if (!e || e.member === this.me) return;
    if (e.type === 'voice') {
      if (e.on) {
        this.inVoice.add(e.member);
        if (!e.to) {
          // An announcement: they joined, or their socket came back and they dropped their peers;
          // a peer I still have with them is stale. Answer "me too" when in voice.
          this.closePeer(e.member);
          if (this.joined) this.send({ type: 'voice', on: true, to: e.member });
        }
        this.connect(e.member);
      } else {
        this.inVoice.delete(e.member);
        this.closePeer(e.member);
      }
      this._emit('change');
    } else if (e.type === 'rtc') {
      // Never answered before "Join voice": nothing of mine goes to anyone until then.
      if (!this.joined) return;
      let peer = this.peers.get(e.member);
      if (e.sdp && e.sdp.type === 'offer' && peer && (peer.pc.remoteDescription || peer.offerer)) {
        // A new offer from a member we had a peer with (they reloaded or rejoined): start afresh.
        this.closePeer(e.member);
        peer = null;
      }
      if (!peer && e.sdp && e.sdp.type === 'offer') {
        this.inVoice.add(e.member); // an offer comes only from a member in voice
        peer = this.newPeer(e.member);
        this._emit('change');
      }
      if (peer) peer.take(e);
    }
  }

  /**
   * My socket is open again (a reconnect). The others saw me away and closed their side of our
   * peers: mine go too, and I say again that I am in voice; each answers and we connect afresh.
   */
  reconnected() {
    if (!this.joined) return;
    for (const id of [...this.peers.keys()]) this.closePeer(id);
    this.inVoice.clear();
    this.send({ type: 'voice', on: true });
    this._emit('change');
  }

  /** A member came online (a reload, a new member): tell them I am in voice. */
  memberOnline(id) {
    if (this.joined && id !== this.me) this.send({ type: 'voice', on: true, to: id });
  }

  /** A member left the room or dropped: their peer is closed; they announce again when back. */
  memberGone(id) {
    const had = this.inVoice.delete(id) || this.peers.has(id);
    this.closePeer(id);
    if (had) this._emit('change');
  }

  // -- peers ----------------------------------------------------------------------------------------

  connect(id) {
    if (!this.joined || id === this.me || this.peers.has(id)) return;
    const peer = this.newPeer(id);
    if (peer.offerer) peer.offer(); // else the other one offers
  }

  newPeer(id) {
    const peer = new VoicePeer(this, id);
    this.peers.set(id, peer);
    return peer;
  }

  closePeer(id) {
    const peer = this.peers.get(id);
    if (!peer) return;
    this.peers.delete(id);
    peer.close();
    this._emit('change');
  }

  peerState(peer) {
    if (this.peers.get(peer.member) !== peer) return;
    if (peer.pc.connectionState === 'failed') this.peerFailed(peer);
    this._emit('change');
  }

  /** A peer that failed is made again by its offerer while both are still in voice. */
  peerFailed(peer, err) {
    if (err) console.warn('voice: peer', peer.member, err); // eslint-disable-line no-console
    if (this.peers.get(peer.member) !== peer) return;
    this.closePeer(peer.member);
    setTimeout(() => { if (this.inVoice.has(peer.member)) this.connect(peer.member); }, RETRY_MS);
  }

  /** The members I have a connected peer with. */
  connected() {
    return [...this.peers.values()].filter((p) => p.pc.connectionState === 'connected').map((p) => p.member);
  }
}
