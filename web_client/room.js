// Shared rooms (docs/rooms.md): shop together with friends.
//
// `RoomClient` speaks the room's WebSocket protocol and holds a local copy of the room: the
// `welcome` view, then every sequenced event applied in order (the last seq kept). A dropped socket
// reconnects with backoff and `since=<last seq>`, so the server replays what was missed and nothing
// is applied twice; a ping keeps the socket alive and finds a dead one. No DOM in it.
//
// `RoomPanel` is the page's "Shop together" section: create or join a room, the members (host,
// online/away, typing, what each is trying with votes), reactions, chat, the shared cart, the stage
// (go on stage with the shopper's own try-on session; watch whoever is on it), host controls.
// Only product, size and colourway ever leave the page for the room: never the avatar, never
// measurements; the stage video is the on-stage member's rendered look, served by the server.
// Voice (voice.js) is off until the shopper presses "Join voice": only then is the microphone used,
// and only members in voice hear it; the panel shows who is in voice and who is talking.

import { ApiError, createRoom, getRoom, joinRoom, roomSocketUrl, rtcConfig, sendStageOffer } from './api.js';
import { VideoPeer } from './tryon.js';
import { TALKING_TTL_MS, VOICE_REF, VoiceChat } from './voice.js';

/** The reactions the server accepts (streaming/room_protocol.py REACTIONS), with spoken names. */
export const REACTIONS = [
  ['👍', 'Thumbs up'], ['❤️', 'Love it'], ['😍', 'Gorgeous'], ['🔥', 'Fire'], ['😂', 'Funny'],
  ['🤔', 'Not sure'], ['👎', 'Thumbs down'],
];
export const CLOSE_REASONS = {
  1000: 'left', 4401: 'bad_token', 4403: 'kicked', 4404: 'no_room', 4408: 'replaced', 4410: 'room_ended',
  4429: 'flooding',
};
const EPHEMERAL = new Set(['typing', 'talking', 'pointer', 'voice', 'rtc']);
const POINTER_EVERY_MS = 250; // pointer messages at most 4 a second: the rate limit (10/s) is shared with chat
const POINTER_TTL_MS = 3000; // a member's pointer goes when it has not moved for this long
const PING_MS = 20_000; // a ping this often while open
const PONG_WAIT_MS = 10_000; // nothing heard for this long after a ping: the socket is dead
const WELCOME_WAIT_MS = 10_000;
const BACKOFF_MS = [300, 1000, 2000, 4000, 8000, 15000];
const QUEUE_MAX = 50; // messages kept while reconnecting (ephemeral ones are dropped)
const HISTORY_KEEP = 300; // events kept for the chat log (and across a reload)
// The sequenced events kept (chat log lines, and votes: the view has each look's tally and my own
// vote only, so the other members' votes, needed to withdraw a leaver's, come from here).
const HISTORY_TYPES = new Set(['chat', 'joined', 'left', 'host', 'locked', 'chat_muted', 'ended', 'stage',
  'cart_added', 'cart_removed', 'vote']);

// -- the local copy of the room ---------------------------------------------------------------------

export function emptyRoom() {
  return {
    id: null, name: '', host: null, locked: false, chatMutedAll: false, ended: false,
    members: new Map(), // id -> {id, name, host, online, chatMuted, trying, tryingSeq, onStage}
    cart: new Map(), // item_id -> item (insertion order)
    votes: new Map(), // look seq -> Map(member id -> +1 | -1)
    tallies: new Map(), // look seq -> {up, down} (the server's, from the last vote event)
  };
}

const entries = (x, key) => (Array.isArray(x) ? x : Object.entries(x || {}).map(([k, v]) => ({ [key]: k, ...v })));

function tallyOf(votes) {
  let up = 0; let down = 0;
  for (const v of votes.values()) { if (v > 0) up += 1; else if (v < 0) down += 1; }
  return { up, down };
}

/** The server's `view` (members and cart as lists or objects) -> the local room; `me`: my member id. */
export function fromView(v, me = null) {
  const r = emptyRoom();
  r.id = v.id ?? v.room_id ?? null;
  r.name = v.name || '';
  r.host = v.host ?? null;
  r.locked = !!v.locked;
  r.chatMutedAll = !!v.chat_muted_all;
  r.ended = !!v.ended;
  for (const m of entries(v.members, 'id')) {
    if (m.host && r.host === null) r.host = m.id;
    r.members.set(m.id, {
      id: m.id, name: m.name, host: m.id === r.host || !!m.host, online: m.online !== false,
      chatMuted: !!m.chat_muted, trying: m.trying || null, tryingSeq: m.trying_seq ?? null, onStage: !!m.on_stage,
    });
  }
  for (const it of entries(v.cart, 'item_id')) r.cart.set(it.item_id, it);
  for (const [look, votes] of Object.entries(v.votes || {})) {
    const seq = Number(look);
    if (votes && typeof votes.up === 'number') {
      r.tallies.set(seq, { up: votes.up, down: votes.down || 0 });
      if (me !== null && votes.mine) r.votes.set(seq, new Map([[me, votes.mine]]));
      continue;
    }
    const m = new Map(Object.entries(votes || {}).filter(([, x]) => x));
    r.votes.set(seq, m);
    r.tallies.set(seq, tallyOf(m));
  }
  for (const [look, t] of Object.entries(v.tallies || {})) r.tallies.set(Number(look), t);
  return r;
}

/** Who voted what on a current look (the tallies stay the server's). */
function noteVote(room, e) {
  if (!room.members.has(e.member) || !isLook(room, e.look)) return;
  const votes = room.votes.get(e.look) || new Map();
  if (e.value) votes.set(e.member, e.value); else votes.delete(e.member);
  room.votes.set(e.look, votes);
}

const isLook = (room, look) => [...room.members.values()].some((m) => m.tryingSeq === look);

function dropLook(room, look) {
  if (look === null || look === undefined) return;
  room.votes.delete(look);
  room.tallies.delete(look);
}

/**
 * A sequenced event's effect on the local room: the rules of streaming/room_state.apply (an event
 * no longer valid at its seq changes nothing; an ended room is frozen). Votes: the view gives each
 * current look's tally; the votes seen since are kept per member to withdraw a leaver's.
 */
export function applyEvent(room, e) {
  if (room.ended) return;
  const m = room.members.get(e.member) || null;
  const byHost = m && room.host === m.id;
  switch (e.type) {
    case 'joined': {
      if (room.members.has(e.member) || room.locked) break;
      const host = room.host === e.member || room.host === null;
      room.members.set(e.member, {
        id: e.member, name: e.name, host, online: true, chatMuted: false, trying: null, tryingSeq: null, onStage: false,
      });
      if (host) room.host = e.member;
      break;
    }
    case 'presence':
      if (m) m.online = e.status === 'online';
      break;
    case 'left':
      if (!m || (e.reason === 'kicked' && (!e.by || e.by === m.id || e.by !== room.host))) break;
      room.members.delete(m.id);
      dropLook(room, m.tryingSeq);
      for (const [look, votes] of room.votes) {
        const v = votes.get(m.id);
        if (!v) continue;
        votes.delete(m.id);
        const t = room.tallies.get(look);
        if (t) room.tallies.set(look, { up: Math.max(0, t.up - (v > 0)), down: Math.max(0, t.down - (v < 0)) });
      }
      if (room.host === m.id) {
        room.host = room.members.size ? room.members.keys().next().value : null;
        if (room.host) room.members.get(room.host).host = true;
      }
      break;
    case 'trying':
      if (!m) break;
      dropLook(room, m.tryingSeq);
      m.trying = { product_id: e.product_id ?? null, garment: e.garment ?? null, size: e.size, colourway: e.colourway, name: e.name ?? null };
      m.tryingSeq = e.seq;
      break;
    case 'vote': {
      if (!m || !isLook(room, e.look)) break;
      const votes = room.votes.get(e.look) || new Map();
      if (e.value) votes.set(m.id, e.value); else votes.delete(m.id);
      room.votes.set(e.look, votes);
      room.tallies.set(e.look, e.tally || tallyOf(votes));
      break;
    }
    case 'cart_added':
      if (m && e.item && !room.cart.has(e.item.item_id)) room.cart.set(e.item.item_id, { ...e.item, added_by: m.id });
      break;
    case 'cart_removed': {
      const item = room.cart.get(e.item_id);
      if (m && item && (item.added_by === m.id || byHost)) room.cart.delete(e.item_id);
      break;
    }
    case 'stage':
      if (!m) break;
      if (e.on) for (const x of room.members.values()) x.onStage = false; // one stage: the newcomer takes it
      m.onStage = !!e.on;
      break;
    case 'chat_muted':
      if (!byHost) break;
      if (e.target == null) room.chatMutedAll = !!e.on;
      else if (room.members.has(e.target) && e.target !== room.host) room.members.get(e.target).chatMuted = !!e.on;
      break;
    case 'host':
      if (!byHost || e.target === m.id || !room.members.has(e.target)) break;
      m.host = false;
      room.members.get(e.target).host = true;
      room.host = e.target;
      break;
    case 'locked':
      if (byHost) room.locked = !!e.on;
      break;
    case 'ended':
      if (!byHost) break;
      room.ended = true;
      for (const x of room.members.values()) x.onStage = false;
      break;
    default:
      break; // chat, reaction: history only
  }
}

// -- the protocol client ----------------------------------------------------------------------------

/**
 * One member's connection to a room.
 *
 * Events: 'welcome'; 'change' (the local room changed); 'event' (detail: {event, replayed}: every
 * sequenced event once, in seq order, replays after a reconnect included); 'signal' (detail: an
 * ephemeral event: typing, talking, pointer); 'servererror' (detail: {code, detail, ref}); 'status'
 * (detail: 'connecting' | 'open' | 'reconnecting' | 'closed'); 'closed' (detail: {code, reason}).
 */
export class RoomClient extends EventTarget {
  /**
   * @param {object} o roomId, token, memberId?; `since` (the last seq this member saw, to resume from
   *   after a reload) with its `history` and `names`; `room` (a view to start from); `socketUrl` and
   *   `WebSocketImpl` and `checkToken` for tests.
   */
  constructor({ roomId, token, memberId = null, since = null, history = [], names = {}, room = null,
    socketUrl = roomSocketUrl, WebSocketImpl = globalThis.WebSocket, checkToken = null }) {
    super();
    this.roomId = roomId;
    this.token = token;
    this.memberId = memberId;
    this.room = room ? fromView(room, memberId) : emptyRoom();
    this.seq = since ?? 0; // the last sequenced event seen (history)
    this.viewSeq = since ?? 0; // the seq that `room` is at
    this.resumeFrom = since; // the first connect's `since` (null: a fresh member)
    this.history = history.slice(-HISTORY_KEEP);
    this.names = new Map(Object.entries(names));
    for (const m of this.room.members.values()) this.names.set(m.id, m.name);
    this.socketUrl = socketUrl;
    this.WebSocketImpl = WebSocketImpl;
    this.checkToken = checkToken || (() => getRoom(roomId, token));
    this.ws = null;
    this.state = 'idle';
    this.welcomed = false;
    this.attempt = 0;
    this.queue = [];
    this.refN = 0;
    this.closed = null; // {code, reason} once closed for good
    this.leaving = false;
    this.timers = {};
    this.lastHeard = 0;
    this._online = () => { if (this.state === 'reconnecting') this._reconnectNow(); };
    if (typeof window !== 'undefined') window.addEventListener('online', this._online);
  }

  get me() { return this.room.members.get(this.memberId) || null; }
  get isHost() { return !!this.memberId && this.room.host === this.memberId; }
  nameOf(id) { return (this.room.members.get(id) || {}).name || this.names.get(id) || 'Someone'; }

  _emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }
  _status(s) { if (this.state !== s) { this.state = s; this._emit('status', s); } }
  _clear(name) { clearTimeout(this.timers[name]); clearInterval(this.timers[name]); delete this.timers[name]; }

  connect() {
    if (this.closed || this.ws) return;
    this._status(this.welcomed ? 'reconnecting' : 'connecting');
    const since = this.welcomed ? this.seq : this.resumeFrom;
    let ws;
    try {
      ws = new this.WebSocketImpl(this.socketUrl(this.roomId, this.token, since));
    } catch (e) {
      this._dropped();
      return;
    }
    this.ws = ws;
    ws.onmessage = (e) => { if (this.ws === ws) this._onFrame(e.data); };
    ws.onclose = (e) => { if (this.ws === ws) this._onClose(e.code, e.reason); };
    ws.onerror = () => {}; // a close follows
    this.timers.welcome = setTimeout(() => { if (this.ws === ws) this._dropped(); }, WELCOME_WAIT_MS);
  }

  /** Sends a client message; returns its `ref` (echoed in an error about it). Queued while reconnecting. */
  send(msg) {
    if (this.closed) return null;
    const ephemeral = EPHEMERAL.has(msg.type) || msg.type === 'ping';
    const m = ephemeral ? msg : { ...msg, ref: msg.ref || `c${++this.refN}` };
    if (this.ws && this.state === 'open') this.ws.send(JSON.stringify(m));
    else if (!ephemeral && this.queue.length < QUEUE_MAX) this.queue.push(m);
    return m.ref || null;
  }

  /** Leaves the room for good (the server answers `left` and closes 1000). */
  leave() {
    if (this.closed) return;
    this.leaving = true;
    if (this.ws && this.state === 'open') {
      this.send({ type: 'leave' });
      this.timers.leave = setTimeout(() => this._final(1000, 'left'), 3000);
    } else {
      this._final(1000, 'left');
    }
  }

  /** Stops this client without leaving (the server keeps the member away until its grace ends). */
  stop() { this._final(1000, 'stopped'); }

  _onFrame(data) {
    this.lastHeard = Date.now();
    let msg;
    try { msg = JSON.parse(data); } catch { return; }
    if (!msg || typeof msg.type !== 'string') return;
    if (msg.type === 'welcome') this._onWelcome(msg);
    else if (msg.type === 'pong') { /* lastHeard is enough */ } else if (msg.type === 'error') this._emit('servererror', msg);
    else if (msg.seq === null || msg.seq === undefined) this._emit('signal', msg);
    else this._onEvent(msg);
  }

  _onWelcome(msg) {
    this._clear('welcome');
    this.memberId = msg.member_id || this.memberId;
    this.room = fromView(msg.room || {}, this.memberId);
    if (!this.room.id) this.room.id = this.roomId;
    for (const m of this.room.members.values()) this.names.set(m.id, m.name);
    this.viewSeq = msg.seq;
    // The saved history says who voted what since; not my own vote: the view's `mine` is the server's
    // word on it, and an older vote of mine in the history would override it.
    for (const e of this.history) if (e.type === 'vote' && e.member !== this.memberId) noteVote(this.room, e);
    // A first connect without `since` starts at the welcome; a resume keeps its last seq and takes
    // the replayed events (seq <= viewSeq) into the history only: the view has them already.
    if ((!this.welcomed && this.resumeFrom === null) || this.seq > msg.seq) this.seq = msg.seq;
    if (this.history.length && this.history[this.history.length - 1].seq > this.seq) {
      this.history = this.history.filter((e) => e.seq <= this.seq); // the server went back: keep what it has
    }
    this.welcomed = true;
    this.attempt = 0;
    this._status('open');
    for (const m of this.queue.splice(0)) this.ws.send(JSON.stringify(m));
    this._clear('ping');
    this.timers.ping = setInterval(() => this._ping(), PING_MS);
    this._emit('welcome', msg);
    this._emit('change');
  }

  _onEvent(e) {
    if (e.seq <= this.seq) return; // seen already
    if (e.seq <= this.viewSeq) { // a replay: in the view already (only who voted what is not)
      if (e.type === 'vote') noteVote(this.room, e);
      this._remember(e, true);
      this.seq = e.seq;
      return;
    }
    if (e.seq > this.viewSeq + 1) { // a gap: resume from what we have; the server replays the rest
      this._dropped(true);
      return;
    }
    const removed = e.type === 'cart_removed' ? this.room.cart.get(e.item_id) : null;
    applyEvent(this.room, e);
    this.seq = this.viewSeq = e.seq;
    this._remember(removed ? { ...e, item: removed } : e, false);
    this._emit('change');
  }

  _remember(e, replayed) {
    if (e.type === 'joined') this.names.set(e.member, e.name);
    const entry = { ...e, actor: e.member ? this.nameOf(e.member) : null };
    if (e.type === 'left' && e.by) entry.byName = this.nameOf(e.by);
    if ((e.type === 'host' || e.type === 'chat_muted') && e.target) entry.targetName = this.nameOf(e.target);
    if (HISTORY_TYPES.has(e.type)) {
      this.history.push(entry);
      if (this.history.length > HISTORY_KEEP) this.history.splice(0, this.history.length - HISTORY_KEEP);
    }
    this._emit('event', { event: entry, replayed });
  }

  _ping() {
    if (!this.ws || this.state !== 'open') return;
    const sent = Date.now();
    this.send({ type: 'ping' });
    this._clear('pong');
    this.timers.pong = setTimeout(() => { if (this.lastHeard < sent) this._dropped(); }, PONG_WAIT_MS);
  }

  _onClose(code, reason) {
    const why = CLOSE_REASONS[code];
    if (why) this._final(code, why, reason);
    else this._dropped();
  }

  /** The socket is gone (or useless): reconnect after a backoff, or at once for a gap. */
  _dropped(now = false) {
    const ws = this.ws;
    this.ws = null;
    for (const t of ['welcome', 'ping', 'pong']) this._clear(t);
    if (ws) { ws.onmessage = ws.onclose = ws.onerror = null; try { ws.close(4000, 'reconnect'); } catch { /* closing */ } }
    if (this.closed) return;
    if (this.leaving) { this._final(1000, 'left'); return; }
    this._status('reconnecting');
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const delay = now ? 0 : base * (0.75 + Math.random() * 0.5);
    this.attempt += 1;
    this._clear('retry');
    this.timers.retry = setTimeout(() => this._retry(), delay);
  }

  async _retry() {
    if (this.closed || this.ws) return;
    // After repeated failures ask over HTTP whether the member still is one: a refused WebSocket
    // handshake has no close code to tell a bad token from a network problem.
    if (this.attempt >= 3) {
      try {
        await this.checkToken();
      } catch (e) {
        if (e instanceof ApiError && [401, 403, 404, 410].includes(e.status)) {
          const code = e.status === 404 ? 4404 : e.status === 410 && e.code === 'room_ended' ? 4410 : 4401;
          this._final(code, CLOSE_REASONS[code], e.message);
          return;
        }
      }
      if (this.closed || this.ws) return;
    }
    this.connect();
  }

  _reconnectNow() { this._clear('retry'); this._retry(); }

  _final(code, reason, detail = '') {
    if (this.closed) return;
    this.closed = { code, reason, detail };
    for (const t of Object.keys(this.timers)) this._clear(t);
    const ws = this.ws;
    this.ws = null;
    if (ws) { ws.onmessage = ws.onclose = ws.onerror = null; try { ws.close(1000); } catch { /* closing */ } }
    if (typeof window !== 'undefined') window.removeEventListener('online', this._online);
    this._status('closed');
    this._emit('closed', this.closed);
  }

  /** What a reload needs to resume: the last seq, the history and the names. */
  snapshot() {
    return { seq: this.seq, history: this.history, names: Object.fromEntries(this.names) };
  }
}

// -- the panel --------------------------------------------------------------------------------------

const STORE_KEY = 'fitroom.room';
const NAME_KEY = 'fitroom.name';
const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'style') e.style.cssText = v;
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  e.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return e;
}

// Server errors said in the page's words (the others show the server's detail).
const ERRORS = {
  rate_limited: 'Slow down a little: too many messages at once.',
  chat_muted: 'The host has muted your chat.',
  no_such_look: 'That look has changed: vote on what they are trying now.',
  not_your_session: 'Your try-on has ended: start it again to go on stage.',
  too_large: 'That message is too long.',
  invalid_message: 'The room could not take that.',
};
const CLOSED_TEXT = {
  left: 'You left the room.',
  kicked: 'The host removed you from the room.',
  room_ended: 'The host ended the room.',
  bad_token: 'Your place in this room has expired. Ask for a new invite to come back.',
  no_room: 'This room does not exist any more.',
  replaced: 'You opened this room in another tab or window, so this one was disconnected.',
  flooding: 'Too many messages too fast: you were disconnected.',
};
const JOIN_ERRORS = {
  no_room: 'This room does not exist.',
  bad_invite: 'This invite link is not valid.',
  invite_expired: 'This invite link has expired. Ask for a new one.',
  room_ended: 'This room has ended.',
  room_locked: 'The host has locked this room: no new members for now.',
  room_full: 'This room is full.',
};

function lookText(t) {
  if (!t) return '';
  const name = t.name || (t.garment ? t.garment.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase()) : `Product ${t.product_id}`);
  return name;
}

/**
 * The "Shop together" section. `hooks` (from app.js): currentLook() -> {garment | product_id, size,
 * colourway, name} of the shopper's try-on choices; sessionId() -> the shopper's ready try-on session
 * id or null; swatch(colourway name) -> '#rrggbb' or null.
 */
export class RoomPanel {
  constructor(hooks) {
    this.hooks = hooks;
    this.client = null;
    this.invite = null; // the invite link (absolute), when known
    this.peer = null; // the stage video being watched
    this.typingSent = false;
    this.typingOff = null;
    this.typing = new Map(); // member id -> timeout
    this.talkers = new Map(); // member id -> timeout (their "talking" badge goes without a fresh `on`)
    this.pointers = new Map(); // member id -> {dot, timer}: where they point on the stage
    this.pointerSent = 0;
    this.voice = null; // VoiceChat of the open room
    this.lastTrying = null;
    this.tryingTimer = null;
    this.stageSession = null; // the try-on session I last put on stage
    this.saveTimer = null;
    this.wire();
  }

  // -- setup ---------------------------------------------------------------------------------------

  wire() {
    const name = $('room-name');
    const join = $('room-join-name');
    const saved = sessionStorage.getItem(NAME_KEY) || '';
    name.value = saved;
    join.value = saved;
    $('room-create-form').addEventListener('submit', (e) => { e.preventDefault(); this.create(); });
    $('room-join-form').addEventListener('submit', (e) => { e.preventDefault(); this.join(); });
    $('room-copy').addEventListener('click', () => this.copyInvite());
    $('room-chat-form').addEventListener('submit', (e) => { e.preventDefault(); this.sendChat(); });
    const input = $('room-chat-input');
    input.addEventListener('input', () => this.onTyping());
    input.addEventListener('blur', () => this.typingDone());
    $('room-share-look').addEventListener('click', () => this.shareLook());
    $('room-cart-add').addEventListener('click', () => this.addToCart());
    $('room-stage-toggle').addEventListener('click', () => this.toggleStage());
    $('room-watch').addEventListener('click', () => (this.peer ? this.stopWatching() : this.watch()));
    for (const id of ['room-stage-view', 'stage']) {
      $(id).addEventListener('pointermove', (e) => this.pointAt(e));
      $(id).addEventListener('pointerdown', (e) => this.pointAt(e, true));
    }
    $('room-leave').addEventListener('click', () => this.leave());
    $('room-voice-toggle').addEventListener('click', () => this.toggleVoice());
    $('room-voice-mute').addEventListener('click', () => { if (this.voice) this.voice.setMuted(!this.voice.muted); });
    $('room-again').addEventListener('click', () => this.reset());
    $('room-rejoin').addEventListener('click', () => {
      const stored = this.load();
      if (stored) this.resume(stored).then((ok) => { if (!ok) this.show(new URLSearchParams(window.location.search).has('invite') ? 'join' : 'create'); });
      else this.reset();
    });
    $('room-lock').addEventListener('change', (e) => this.send({ type: 'lock', on: e.target.checked }));
    $('room-mute-all').addEventListener('click', () => this.send({ type: 'mute_chat', on: !this.client.room.chatMutedAll }));
    $('room-end').addEventListener('click', () => { $('room-end-confirm').hidden = false; $('room-end-yes').focus(); });
    $('room-end-no').addEventListener('click', () => { $('room-end-confirm').hidden = true; $('room-end').focus(); });
    $('room-end-yes').addEventListener('click', () => { $('room-end-confirm').hidden = true; this.send({ type: 'end' }); });
    const row = $('room-reactions');
    for (const [emoji, label] of REACTIONS) {
      row.append(el('button', {
        type: 'button', class: 'reaction', 'aria-label': `React: ${label}`, title: label, text: emoji,
        on: { click: () => this.send({ type: 'react', emoji }) },
      }));
    }
    window.addEventListener('pagehide', () => this.save());
  }

  /** Opens what the page's address and this tab's storage say: a stored membership, an invite, or nothing. */
  async start() {
    const q = new URLSearchParams(window.location.search);
    const roomId = q.get('room');
    const invite = q.get('invite');
    const stored = this.load();
    if (stored && (!roomId || roomId === stored.roomId)) {
      if (await this.resume(stored)) return;
    }
    if (roomId && invite) {
      this.show('join');
      this.invite = new URL(`/?room=${encodeURIComponent(roomId)}&invite=${encodeURIComponent(invite)}`, window.location.href).href;
    } else {
      this.show('create');
    }
  }

  show(mode) {
    const panel = $('room');
    panel.dataset.state = mode;
    $('room-create-form').hidden = mode !== 'create';
    $('room-join-form').hidden = mode !== 'join';
    $('room-live').hidden = mode !== 'live';
    $('room-closed').hidden = mode !== 'closed';
    $('cart-add').hidden = mode !== 'live';
  }

  say(text, kind = '') {
    const s = $('room-status');
    s.textContent = text;
    s.className = `message ${kind}`;
  }

  // -- storage -------------------------------------------------------------------------------------

  load() {
    try { return JSON.parse(sessionStorage.getItem(STORE_KEY) || 'null'); } catch { return null; }
  }

  save() {
    clearTimeout(this.saveTimer);
    this.saveTimer = null;
    const c = this.client;
    if (!c || c.closed) return;
    const doc = { roomId: c.roomId, memberId: c.memberId, token: c.token, invite: this.invite, ...c.snapshot() };
    try { sessionStorage.setItem(STORE_KEY, JSON.stringify(doc)); } catch { /* full or private */ }
  }

  saveSoon() { if (!this.saveTimer) this.saveTimer = setTimeout(() => this.save(), 250); }

  forget() { sessionStorage.removeItem(STORE_KEY); }

  // -- create, join, resume ------------------------------------------------------------------------

  displayName(input) {
    const name = input.value.trim();
    if (!name) { this.say('Please enter your name first.', 'error'); input.focus(); return null; }
    sessionStorage.setItem(NAME_KEY, name);
    return name;
  }

  async create() {
    const name = this.displayName($('room-name'));
    if (!name) return;
    const button = $('room-create');
    button.disabled = true;
    this.say('Opening a room…');
    try {
      const look = this.hooks.currentLook();
      const r = await createRoom({ display_name: name, ...(look && look.product_id ? { product_ids: [look.product_id] } : {}) });
      this.invite = new URL(r.invite_url || `/?room=${r.room_id}&invite=${r.invite_token}`, window.location.href).href;
      this.open({ roomId: r.room_id, memberId: r.member_id, token: r.member_token });
      this.say('Your room is open. Send the invite link to your friends.');
    } catch (e) {
      this.say(e.message, 'error');
    } finally {
      button.disabled = false;
    }
  }

  async join() {
    const name = this.displayName($('room-join-name'));
    if (!name) return;
    const q = new URLSearchParams(window.location.search);
    const button = $('room-join');
    button.disabled = true;
    this.say('Joining…');
    try {
      const r = await joinRoom(q.get('room'), { invite_token: q.get('invite'), display_name: name });
      this.open({ roomId: r.room_id, memberId: r.member_id, token: r.member_token });
      this.say('You joined the room.');
    } catch (e) {
      this.say((e instanceof ApiError && JOIN_ERRORS[e.code]) || e.message, 'error');
    } finally {
      button.disabled = false;
    }
  }

  /** Back into a stored membership: the room view over HTTP first, then the socket with `since`. */
  async resume(stored) {
    this.say('Reconnecting to your room…');
    let got;
    try {
      got = await getRoom(stored.roomId, stored.token);
    } catch (e) {
      if (e instanceof ApiError && e.status !== 0 && e.status < 500) {
        this.forget();
        this.say(`You are no longer in that room${e.code === 'room_ended' ? ': it has ended' : ''}.`, 'error');
        return false;
      }
      got = null; // the server is unreachable: the socket retries
    }
    this.invite = stored.invite || null;
    const view = got ? (got.room || got.view || got) : null;
    this.open({
      roomId: stored.roomId, memberId: stored.memberId, token: stored.token, since: stored.seq ?? (got && got.seq) ?? null,
      history: stored.history || [], names: stored.names || {}, room: view,
    });
    this.say('');
    return true;
  }

  open(o) {
    const c = new RoomClient(o);
    this.client = c;
    this.openVoice(c);
    $('room-chat').replaceChildren();
    c.addEventListener('change', () => { this.render(); this.saveSoon(); });
    c.addEventListener('welcome', () => this.onWelcome());
    c.addEventListener('event', (e) => this.onEvent(e.detail));
    c.addEventListener('signal', (e) => this.onSignal(e.detail));
    c.addEventListener('servererror', (e) => {
      if (e.detail.ref === VOICE_REF) return; // voice signalling to a member who just left: nothing to say
      this.say(ERRORS[e.detail.code] || e.detail.detail || 'The room refused that.', 'error');
      this.render(); // a refused change (the lock box, say) shows the room as it is
    });
    c.addEventListener('status', (e) => this.onStatus(e.detail));
    c.addEventListener('closed', (e) => this.onClosed(e.detail));
    this.show('live');
    this.renderHistory();
    this.render();
    this.save();
    c.connect();
  }

  onWelcome() {
    // What the room holds as my look is what I last said (a reconnect or a reload keeps it): a new
    // `trying` only when my try-on shows something else, which would start a new look and its votes.
    const me = this.client.me;
    this.lastTrying = me && me.trying ? JSON.stringify({ type: 'trying', ...RoomPanel.lookMessage(me.trying) }) : null;
    if (this.hooks.sessionId()) this.nowTrying(this.hooks.currentLook(), { now: true });
    if (this.voice) this.voice.reconnected();
    this.renderHistory();
  }

  onStatus(s) {
    const conn = $('room-conn');
    conn.textContent = { connecting: 'Connecting…', open: 'Connected', reconnecting: 'Connection lost: reconnecting…', closed: 'Disconnected' }[s] || '';
    conn.dataset.state = s;
  }

  onClosed({ reason, detail }) {
    this.stopWatching();
    if (this.voice) this.voice.stop();
    this.typingDone();
    if (reason === 'stopped') return;
    if (reason !== 'replaced' && reason !== 'flooding') this.forget();
    const text = CLOSED_TEXT[reason] || detail || 'The room closed.';
    $('room-closed-text').textContent = text;
    $('room-rejoin').hidden = !(reason === 'replaced' || reason === 'flooding');
    this.show('closed');
    this.say('');
    $('room-closed').focus();
  }

  reset() {
    this.dropPointers();
    if (this.client) this.client.stop();
    if (this.voice) this.voice.stop();
    this.client = null;
    this.forget();
    // An address with the invite of a room that is over is no use now.
    if (new URLSearchParams(window.location.search).has('room')) window.history.replaceState(null, '', window.location.pathname);
    this.show('create');
    this.say('');
    $('room-name').focus();
  }

  leave() {
    if (!this.client) return;
    this.client.leave();
  }

  // -- sending -------------------------------------------------------------------------------------

  send(msg) { return this.client && !this.client.closed ? this.client.send(msg) : null; }

  sendChat() {
    const input = $('room-chat-input');
    const text = input.value.trim();
    if (!text) return;
    if (text.length > 1000) { this.say(ERRORS.too_large, 'error'); return; }
    this.send({ type: 'chat', text });
    input.value = '';
    this.typingDone();
  }

  onTyping() {
    if (!this.client) return;
    const empty = !$('room-chat-input').value.trim();
    if (empty) { this.typingDone(); return; }
    if (!this.typingSent) { this.send({ type: 'typing', on: true }); this.typingSent = true; }
    clearTimeout(this.typingOff);
    this.typingOff = setTimeout(() => this.typingDone(), 3000);
  }

  typingDone() {
    clearTimeout(this.typingOff);
    this.typingOff = null;
    if (this.typingSent) { this.typingSent = false; this.send({ type: 'typing', on: false }); }
  }

  /** The room's copy of a look: product or demo garment, size, colourway, name only. */
  static lookMessage(look) {
    const out = look.product_id ? { product_id: look.product_id } : { garment: look.garment };
    out.size = look.size;
    out.colourway = look.colourway;
    if (look.name) out.name = String(look.name).slice(0, 80);
    return out;
  }

  /** Tells the room what I am trying (debounced; nothing when it has not changed). */
  nowTrying(look = this.hooks.currentLook(), { now = false } = {}) {
    if (!look || !this.client || this.client.closed) return;
    const msg = { type: 'trying', ...RoomPanel.lookMessage(look) };
    clearTimeout(this.tryingTimer);
    const go = () => {
      const key = JSON.stringify(msg);
      if (key === this.lastTrying) return;
      this.lastTrying = key;
      this.send(msg);
    };
    if (now) go(); else this.tryingTimer = setTimeout(go, 300);
  }

  /** "Show the room what I am trying": the page's current choices (the same look again changes nothing). */
  shareLook() {
    this.nowTrying(this.hooks.currentLook(), { now: true });
    this.say('The room can see what you are trying.');
  }

  addToCart(look = this.hooks.currentLook()) {
    if (!look || !this.client) return;
    this.send({ type: 'cart_add', ...RoomPanel.lookMessage(look), qty: 1 });
    this.say(`Added ${lookText(look)} in size ${look.size} to the shared cart.`);
  }

  /** The shopper's try-on session changed (a new one is ready): the stage follows it. */
  sessionChanged(id) {
    const me = this.client && this.client.me;
    if (id && me && me.onStage && id !== this.stageSession) this.goOnStage(id);
    this.render();
  }

  goOnStage(id) {
    this.stageSession = id;
    this.send({ type: 'stage', on: true, session_id: id });
  }

  toggleStage() {
    const me = this.client && this.client.me;
    if (!me) return;
    if (me.onStage) { this.stageSession = null; this.send({ type: 'stage', on: false }); return; }
    const id = this.hooks.sessionId();
    if (!id) { this.say('Start a try-on first: the room watches your live try-on.', 'error'); return; }
    this.goOnStage(id);
  }

  async copyInvite() {
    const input = $('room-invite');
    try {
      await navigator.clipboard.writeText(input.value);
      this.say('Invite link copied.');
    } catch {
      input.focus();
      input.select();
      let ok = false;
      try { ok = document.execCommand('copy'); } catch { ok = false; }
      this.say(ok ? 'Invite link copied.' : 'Select the link and copy it.');
    }
  }

  // -- the stage video -----------------------------------------------------------------------------

  onStageMember() {
    const c = this.client;
    if (!c) return null;
    for (const m of c.room.members.values()) if (m.onStage) return m;
    return null;
  }

  async watch() {
    const c = this.client;
    const on = this.onStageMember();
    if (!c || !on) { this.say('Nobody is on stage right now.'); return; }
    this.stopWatching(false);
    const video = $('room-video');
    video.hidden = false;
    const peer = new VideoPeer(video, (offer) => sendStageOffer(c.roomId, c.token, offer));
    this.peer = peer;
    peer.addEventListener('state', (e) => {
      if (this.peer === peer && e.detail === 'failed') this.say('The stage video was lost. Press “Watch” again.', 'error');
    });
    this.render();
    try {
      await peer.connect();
      if (this.peer === peer) this.say(`Watching ${on.name}.`);
    } catch (e) {
      if (this.peer !== peer) return;
      this.stopWatching(false);
      this.say(e instanceof ApiError && e.code === 'no_stage' ? 'Nobody is on stage right now.' : e.message, 'error');
    }
  }

  stopWatching(rerender = true) {
    this.dropPointers();
    if (this.peer) this.peer.close();
    this.peer = null;
    const video = $('room-video');
    if (video) video.hidden = true;
    if (rerender && this.client) this.render();
  }

  // -- incoming ------------------------------------------------------------------------------------

  onEvent({ event, replayed }) {
    if (event.type === 'reaction' && !replayed) this.burst(event);
    if (event.type === 'chat' || event.type === 'left') this.clearTyping(event.member);
    if (event.type === 'left') this.dropPointer(event.member);
    if (this.voice && (event.type === 'left' || (event.type === 'presence' && event.status === 'away'))) {
      this.voice.memberGone(event.member); // their side of the peer is gone or going
      this.clearTalking(event.member);
    }
    if (this.voice && event.type === 'presence' && event.status === 'away' && !replayed
        && event.member === this.client.memberId && this.client.state === 'open') {
      // Away about me while my socket is open: another process took me for gone (docs/rooms.md,
      // "Presence across processes"; `online` follows). The others closed their peers with me and
      // dropped me from voice: mine are stale, and I say again that I am in voice, as after a reconnect.
      this.voice.reconnected();
    }
    if (this.voice && event.type === 'presence' && event.status === 'online' && !replayed) this.voice.memberOnline(event.member);
    if (event.type === 'stage' && this.peer && !replayed) {
      // Whoever is on stage now (another member, or a new try-on of the same one): watch it instead.
      if (event.on) this.watch();
      else if (!this.onStageMember()) { this.stopWatching(); this.say('Nobody is on stage now.'); }
    }
    this.renderHistory();
  }

  onSignal(e) {
    if (!this.client || e.member === this.client.memberId) return;
    if (e.type === 'voice' || e.type === 'rtc') { if (this.voice) this.voice.onSignal(e); return; }
    if (e.type === 'talking') { this.onTalking(e); return; }
    if (e.type === 'pointer') { this.onPointer(e); return; }
    if (e.type !== 'typing') return;
    if (e.on) {
      clearTimeout(this.typing.get(e.member));
      this.typing.set(e.member, setTimeout(() => this.clearTyping(e.member), 8000));
    } else this.clearTyping(e.member, false);
    this.renderTyping();
  }

  onTalking(e) {
    if (e.on) {
      clearTimeout(this.talkers.get(e.member));
      this.talkers.set(e.member, setTimeout(() => this.clearTalking(e.member), TALKING_TTL_MS));
    } else this.clearTalking(e.member, false);
    this.renderTalking();
  }

  clearTalking(member, rerender = true) {
    if (!this.talkers.has(member)) return;
    clearTimeout(this.talkers.get(member));
    this.talkers.delete(member);
    if (rerender) this.renderTalking();
  }

  // -- pointers on the shared view: the stage video I watch, or my own try-on while I am on stage ----

  pointerHost() {
    const me = this.client && this.client.room.members.get(this.client.memberId);
    if (this.peer && !$('room-video').hidden) return $('room-stage-view');
    return me && me.onStage ? $('stage') : null;
  }

  pointAt(e, now = false) {
    const host = this.pointerHost();
    if (!host || e.currentTarget !== host) return;
    const t = performance.now();
    if (!now && t - this.pointerSent < POINTER_EVERY_MS) return;
    const r = host.getBoundingClientRect();
    const x = (e.clientX - r.left) / r.width;
    const y = (e.clientY - r.top) / r.height;
    if (!(x >= 0 && x <= 1 && y >= 0 && y <= 1)) return;
    this.pointerSent = t;
    this.send({ type: 'pointer', x: Math.round(x * 1000) / 1000, y: Math.round(y * 1000) / 1000 });
  }

  onPointer(e) {
    const host = this.pointerHost();
    if (!host) return;
    let p = this.pointers.get(e.member);
    if (!p || p.dot.parentNode !== host) {
      if (p) this.dropPointer(e.member);
      const hue = [...e.member].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) % 360, 0);
      const dot = el('div', { class: 'room-pointer', dataset: { member: e.member } },
        el('span', { text: this.client.nameOf(e.member) }));
      dot.style.setProperty('--hue', String(hue));
      host.append(dot);
      p = { dot, timer: null };
      this.pointers.set(e.member, p);
    }
    p.dot.style.left = `${e.x * 100}%`;
    p.dot.style.top = `${e.y * 100}%`;
    clearTimeout(p.timer);
    p.timer = setTimeout(() => this.dropPointer(e.member), POINTER_TTL_MS);
  }

  dropPointer(member) {
    const p = this.pointers.get(member);
    if (!p) return;
    clearTimeout(p.timer);
    p.dot.remove();
    this.pointers.delete(member);
  }

  dropPointers() { for (const member of [...this.pointers.keys()]) this.dropPointer(member); }

  isTalking(id) {
    return this.client && id === this.client.memberId ? !!(this.voice && this.voice.talking) : this.talkers.has(id);
  }

  // -- voice ---------------------------------------------------------------------------------------

  openVoice(c) {
    if (this.voice) this.voice.stop();
    for (const t of this.talkers.values()) clearTimeout(t);
    this.talkers.clear();
    const voice = new VoiceChat({
      send: (m) => { if (this.client === c) this.send(m); },
      memberId: () => c.memberId,
      audioBox: $('room-voice-audio'),
      iceServers: [], // the server's (FITROOM_ICE_SERVERS) once fetched, long before anyone joins voice
    });
    rtcConfig().then((cfg) => { voice.iceServers = cfg.ice_servers; });
    this.voice = voice;
    voice.addEventListener('change', () => { if (this.voice === voice) this.render(); });
    voice.addEventListener('talking', () => { if (this.voice === voice) this.renderTalking(); });
    voice.addEventListener('error', (e) => this.say(e.detail, 'error'));
  }

  async toggleVoice() {
    const v = this.voice;
    if (!v || !this.client || this.client.closed) return;
    if (v.joined) { v.leave(); this.say('You left voice.'); return; }
    this.say('Joining voice…');
    await v.join();
    if (v.joined) this.say('You are in voice: the members in voice hear you.');
  }

  renderVoice() {
    const c = this.client;
    const v = this.voice;
    if (!c || !v) return;
    const toggle = $('room-voice-toggle');
    toggle.textContent = v.joining ? 'Joining voice…' : v.joined ? 'Leave voice' : 'Join voice';
    toggle.disabled = v.joining;
    toggle.setAttribute('aria-pressed', String(v.joined));
    const mute = $('room-voice-mute');
    mute.hidden = !v.joined;
    mute.textContent = v.muted ? 'Unmute' : 'Mute';
    mute.setAttribute('aria-pressed', String(v.muted));
    const names = [...(v.joined ? ['you'] : []),
      ...[...v.inVoice].filter((id) => c.room.members.has(id)).map((id) => c.nameOf(id))];
    $('room-voice-who').textContent = names.length ? `In voice: ${names.join(', ')}.` : 'Nobody is in voice.';
  }

  clearTyping(member, rerender = true) {
    if (!this.typing.has(member)) return;
    clearTimeout(this.typing.get(member));
    this.typing.delete(member);
    if (rerender) this.renderTyping();
  }

  burst(e) {
    const who = this.client.nameOf(e.member);
    const label = (REACTIONS.find(([x]) => x === e.emoji) || [e.emoji, e.emoji])[1];
    const b = el('li', { class: 'burst' }, el('span', { class: 'burst-emoji', 'aria-hidden': 'true', text: e.emoji }),
      el('span', { class: 'burst-who', text: who }), el('span', { class: 'visually-hidden', text: ` reacted: ${label}` }));
    const box = $('room-bursts');
    box.append(b);
    while (box.children.length > 6) box.firstChild.remove();
    setTimeout(() => b.remove(), 4000);
  }

  // -- rendering -----------------------------------------------------------------------------------

  /** Re-renders `box` with `fn`, keeping the keyboard focus on the control with the same data-key. */
  static keepFocus(box, fn) {
    const active = document.activeElement;
    const key = active && box.contains(active) ? active.dataset.key : null;
    fn();
    if (key) {
      const again = box.querySelector(`[data-key="${CSS.escape(key)}"]`);
      if (again && !again.disabled) again.focus();
    }
  }

  swatch(name) {
    const hex = this.hooks.swatch(name);
    return hex ? el('span', { class: 'swatch', style: `background:${hex}`, 'aria-hidden': 'true' }) : null;
  }

  render() {
    const c = this.client;
    if (!c) return;
    const room = c.room;
    const me = c.me;
    const host = c.isHost;
    $('room-title').textContent = room.name || 'Your room';
    $('room-invite-row').hidden = !this.invite;
    $('room-invite').value = this.invite || '';
    $('room-locked-note').hidden = !room.locked;
    // Members.
    const list = $('room-members');
    RoomPanel.keepFocus(list, () => list.replaceChildren(...[...room.members.values()].map((m) => this.memberItem(m, me, host))));
    $('room-count').textContent = `(${room.members.size})`;
    this.renderTyping();
    this.renderVoice();
    // Stage.
    const onStage = [...room.members.values()].filter((m) => m.onStage);
    $('room-stage-who').textContent = onStage.length
      ? `On stage: ${onStage.map((m) => (m.id === c.memberId ? `${m.name} (you)` : m.name)).join(', ')}`
      : 'Nobody is on stage.';
    const toggle = $('room-stage-toggle');
    const session = this.hooks.sessionId();
    toggle.textContent = me && me.onStage ? 'Leave stage' : 'Go on stage';
    toggle.disabled = !me || (!me.onStage && !session);
    $('room-stage-hint').hidden = !!(session || (me && me.onStage));
    const watch = $('room-watch');
    watch.textContent = this.peer ? 'Stop watching' : 'Watch';
    watch.disabled = !this.peer && !onStage.length;
    watch.setAttribute('aria-pressed', String(!!this.peer));
    // Chat.
    const muted = !!me && !host && (me.chatMuted || room.chatMutedAll);
    $('room-chat-input').disabled = muted;
    $('room-chat-send').disabled = muted;
    $('room-muted-note').hidden = !muted;
    // Cart.
    const cart = $('room-cart');
    RoomPanel.keepFocus(cart, () => cart.replaceChildren(...[...room.cart.values()].map((it) => this.cartItem(it, host))));
    $('room-cart-empty').hidden = room.cart.size > 0;
    // Host controls.
    $('room-host').hidden = !host;
    $('room-lock').checked = room.locked;
    $('room-mute-all').textContent = room.chatMutedAll ? 'Let everyone chat' : 'Mute everyone’s chat';
    $('room-mute-all').setAttribute('aria-pressed', String(room.chatMutedAll));
  }

  memberItem(m, me, host) {
    const c = this.client;
    const mine = m.id === c.memberId;
    const head = el('div', { class: 'm-head' },
      el('span', { class: `m-dot ${m.online ? 'online' : 'away'}`, 'aria-hidden': 'true' }),
      el('span', { class: 'm-name', text: m.name }),
      mine ? el('span', { class: 'badge you', text: 'you' }) : null,
      m.id === c.room.host ? el('span', { class: 'badge host', text: 'host' }) : null,
      m.onStage ? el('span', { class: 'badge stage', text: 'on stage' }) : null,
      m.chatMuted || (c.room.chatMutedAll && m.id !== c.room.host) ? el('span', { class: 'badge muted-badge', text: 'muted' }) : null,
      el('span', { class: 'm-presence', text: m.online ? 'online' : 'away' }),
      this.inVoice(m.id) ? el('span', { class: 'badge voice', text: 'in voice' }) : null,
      el('span', { class: 'badge talking', text: 'talking', hidden: !this.isTalking(m.id) }),
      el('span', { class: 'm-typing', text: 'typing…', hidden: !this.typing.has(m.id) }));
    const li = el('li', { class: 'member', dataset: { member: m.id } }, head);
    if (m.trying) li.append(this.tryingRow(m, mine));
    if (host && !mine) {
      li.append(el('div', { class: 'm-host', role: 'group', 'aria-label': `Host controls for ${m.name}` },
        el('button', { type: 'button', class: 'small', text: 'Make host', dataset: { key: `host:${m.id}` }, on: { click: () => this.send({ type: 'hand_over', member: m.id }) } }),
        el('button', { type: 'button', class: 'small', text: m.chatMuted ? 'Unmute chat' : 'Mute chat', 'aria-pressed': String(m.chatMuted), dataset: { key: `mute:${m.id}` }, on: { click: () => this.send({ type: 'mute_chat', on: !m.chatMuted, member: m.id }) } }),
        el('button', { type: 'button', class: 'small danger', text: 'Remove', 'aria-label': `Remove ${m.name} from the room`, dataset: { key: `kick:${m.id}` }, on: { click: () => this.send({ type: 'kick', member: m.id }) } })));
    }
    return li;
  }

  inVoice(id) {
    const v = this.voice;
    return !!v && (id === this.client.memberId ? v.joined : v.inVoice.has(id));
  }

  tryingRow(m, mine) {
    const c = this.client;
    const t = m.trying;
    const look = m.tryingSeq;
    const tally = c.room.tallies.get(look) || { up: 0, down: 0 };
    const myVote = ((c.room.votes.get(look) || new Map()).get(c.memberId)) || 0;
    const what = lookText(t);
    const row = el('div', { class: 'm-trying' },
      el('span', { class: 'm-trying-label', text: mine ? 'You are trying' : 'Trying' }), ' ',
      el('strong', { class: 'm-look', text: what }), ' ',
      el('span', { class: 'm-size', text: `size ${t.size}` }), ' ',
      el('span', { class: 'm-colour' }, this.swatch(t.colourway), t.colourway || ''), ' ',
      el('span', { class: 'tally', 'aria-label': `${tally.up} up, ${tally.down} down`, text: `${tally.up} up · ${tally.down} down` }));
    if (!mine && look !== null) {
      const vote = (value, text, label) => el('button', {
        type: 'button', class: 'small vote', text, 'aria-label': `${label} ${m.name}’s ${what}`,
        'aria-pressed': String(myVote === value), dataset: { key: `vote:${m.id}:${value}`, vote: value > 0 ? 'up' : 'down' },
        on: { click: () => this.send({ type: 'vote', look, value: myVote === value ? 0 : value }) },
      });
      row.append(el('span', { class: 'votes', role: 'group', 'aria-label': 'Vote' }, vote(1, '👍 Up', 'Vote up'), vote(-1, '👎 Down', 'Vote down')));
    }
    return row;
  }

  cartItem(it, host) {
    const c = this.client;
    const mineItem = it.added_by === c.memberId;
    const what = lookText(it);
    return el('li', { class: 'cart-item', dataset: { item: it.item_id } },
      el('span', { class: 'ci-what' }, el('strong', { text: what }), ` · size ${it.size} · `, this.swatch(it.colourway), `${it.colourway || ''}`,
        it.qty > 1 ? ` × ${it.qty}` : ''),
      el('span', { class: 'ci-who muted', text: `added by ${mineItem ? 'you' : c.nameOf(it.added_by)}` }),
      mineItem || host ? el('button', {
        type: 'button', class: 'small', text: 'Remove', 'aria-label': `Remove ${what} from the shared cart`,
        dataset: { key: `cart:${it.item_id}` }, on: { click: () => this.send({ type: 'cart_remove', item_id: it.item_id }) },
      }) : null);
  }

  renderTyping() {
    const c = this.client;
    if (!c) return;
    const names = [...this.typing.keys()].filter((id) => c.room.members.has(id)).map((id) => c.nameOf(id));
    $('room-typing').textContent = !names.length ? '' : names.length === 1 ? `${names[0]} is typing…`
      : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]} are typing…`;
    for (const li of $('room-members').children) {
      const t = li.querySelector('.m-typing');
      if (t) t.hidden = !this.typing.has(li.dataset.member);
    }
  }

  renderTalking() {
    for (const li of $('room-members').children) {
      const t = li.querySelector('.badge.talking');
      if (t) t.hidden = !this.isTalking(li.dataset.member);
    }
  }

  /** Appends the history entries not yet in the chat log. */
  renderHistory() {
    const c = this.client;
    if (!c) return;
    const log = $('room-chat');
    const all = c.history;
    // The history keeps its last HISTORY_KEEP entries: the ones after the last line shown are new
    // (a history that went back, which a server that lost events could cause, is drawn again).
    let lastShown = Number(log.lastElementChild && log.lastElementChild.dataset.seq) || 0;
    if (lastShown > (all.length ? all[all.length - 1].seq : 0)) { log.replaceChildren(); lastShown = 0; }
    const fresh = all.filter((e) => e.seq > lastShown);
    if (!fresh.length) return;
    const stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    for (const e of fresh) {
      const line = this.historyLine(e);
      if (line) { line.dataset.seq = e.seq; log.append(line); }
    }
    while (log.children.length > HISTORY_KEEP) log.firstChild.remove();
    if (stick) log.scrollTop = log.scrollHeight;
  }

  historyLine(e) {
    const c = this.client;
    const me = c.memberId;
    const who = e.member === me ? 'You' : (e.actor || 'Someone');
    const time = e.at ? new Date(e.at) : null;
    const stamp = time ? el('time', { datetime: time.toISOString(), text: time.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) }) : null;
    if (e.type === 'chat') {
      return el('li', { class: 'chat' }, el('span', { class: 'who', text: who }), ': ', el('span', { class: 'text', text: e.text }), ' ', stamp);
    }
    const by = e.by === me ? 'you' : (e.byName || 'the host');
    const target = e.target === me ? 'You' : (e.targetName || 'Someone');
    let text = null;
    switch (e.type) {
      case 'joined': text = `${who} joined${e.host ? ' as the host' : ''}.`; break;
      case 'left': text = e.reason === 'kicked' ? `${who} ${e.member === me ? 'were' : 'was'} removed by ${by}.`
        : e.reason === 'timeout' ? `${who} lost the connection and left.` : `${who} left.`; break;
      case 'host': text = `${target} ${e.target === me ? 'are' : 'is'} now the host.`; break;
      case 'locked': text = e.on ? 'The room is locked: no new members.' : 'The room is open to new members again.'; break;
      case 'chat_muted': text = e.target
        ? `${e.target === me ? 'Your' : `${target}’s`} chat was ${e.on ? 'muted' : 'unmuted'} by the host.`
        : `Chat was ${e.on ? 'muted for everyone but the host' : 'opened to everyone again'}.`; break;
      case 'ended': text = 'The host ended the room.'; break;
      case 'stage': text = `${who} ${e.on ? 'went on stage' : 'left the stage'}.`; break;
      case 'cart_added': text = e.item ? `${who} added ${lookText(e.item)} (size ${e.item.size}, ${e.item.colourway}) to the cart.` : null; break;
      case 'cart_removed': text = `${who} removed ${e.item ? lookText(e.item) : 'an item'} from the cart.`; break;
      default: break;
    }
    return text ? el('li', { class: 'sys', text }) : null;
  }
}

/** Sets up the room panel of the page (the elements of index.html's "Shop together" section). */
export function initRooms(hooks) {
  const panel = new RoomPanel(hooks);
  panel.start();
  return panel;
}
