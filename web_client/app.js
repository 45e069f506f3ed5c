// The storefront page: pick a garment, an avatar, a size, colour and fabric; start a try-on
// session; watch it drape; turn it in the live video; see the size advice; take the look home in AR.
// Plain ES modules, no framework; everything goes through the HTTP API (./api.js).

import { ApiError, createTryOn, getOptions } from './api.js';
import { TryOnStream, watchStatus } from './tryon.js';
import { attachControls } from './controls.js';
import { FrameClock } from './frame_stamp.js';
import { loadModelViewer, offerImmersiveAr, showLook } from './ar.js';
import { describeAvatar, photoAvatar, photoChosen } from './avatar_photos.js';
import { initRooms } from './room.js';

// What the page offers: the demo garments and the choices the try-on API accepts.
const DEFAULTS = {
  garments: [
    { id: 'tshirt', name: 'T-shirt', blurb: 'Crew neck, short sleeves' },
    { id: 'longsleeve', name: 'Long-sleeve top', blurb: 'Fitted, full-length sleeves' },
    { id: 'dress', name: 'Dress', blurb: 'Knee length, A-line' },
    { id: 'skirt', name: 'Skirt', blurb: 'Knee length' },
    { id: 'trousers', name: 'Trousers', blurb: 'Straight leg' },
  ],
  sizes: ['XS', 'S', 'M', 'L', 'XL'],
  // The server's named colourways (streaming/tryon_sessions.py COLOURWAYS), sRGB swatches.
  colourways: [
    { name: 'white', hex: '#f0efe9' },
    { name: 'navy', hex: '#1f2a44' },
    { name: 'red', hex: '#b3282d' },
    { name: 'sage', hex: '#8fa88a' },
    { name: 'black', hex: '#1d1d1f' },
    { name: 'sand', hex: '#c8ad7f' },
  ],
  fabrics: ['cotton_jersey', 'polyester_knit', 'denim', 'silk_charmeuse', 'wool_suiting'],
  lights: ['studio', 'daylight', 'evening', 'store'],
};

const $ = (id) => document.getElementById(id);
const label = (s) => s.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());

const state = {
  options: DEFAULTS,
  garment: 'tshirt',
  size: 'M',
  colourway: 'navy',
  fabric: 'cotton_jersey',
  light: 'studio',
  fitmap: false,
  session: null, // the last session JSON
  stream: null, // TryOnStream
  lookVersion: 0,
  busy: false,
};

function say(text, kind = '') {
  const m = $('message');
  m.textContent = text;
  m.className = `message ${kind}`;
}

// A group of toggle buttons acting as radios (aria-checked), keyboard friendly.
function chipGroup(el, items, current, onPick, render = (it) => ({ value: it, text: label(it) })) {
  el.replaceChildren();
  for (const it of items) {
    const { value, text, swatch } = render(it);
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'chip';
    b.setAttribute('role', 'radio');
    b.dataset.value = value;
    b.setAttribute('aria-checked', String(value === current));
    if (swatch) {
      const s = document.createElement('span');
      s.className = 'swatch';
      s.style.background = swatch;
      s.setAttribute('aria-hidden', 'true');
      b.append(s);
    }
    b.append(document.createTextNode(text));
    b.addEventListener('click', () => {
      for (const c of el.children) c.setAttribute('aria-checked', String(c === b));
      onPick(value);
    });
    el.append(b);
  }
}

function renderGarments() {
  const ul = $('garments');
  ul.replaceChildren();
  for (const g of state.options.garments) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'garment';
    b.setAttribute('role', 'radio');
    b.dataset.garment = g.id;
    b.setAttribute('aria-checked', String(g.id === state.garment));
    b.innerHTML = `<span class="g-name"></span><span class="g-blurb"></span>`;
    b.querySelector('.g-name').textContent = g.name || label(g.id);
    b.querySelector('.g-blurb').textContent = g.blurb || '';
    b.addEventListener('click', () => {
      state.garment = g.id;
      for (const o of ul.querySelectorAll('.garment')) o.setAttribute('aria-checked', String(o === b));
      renderChoices();
    });
    li.append(b);
    ul.append(li);
  }
}

/** The chosen garment: a demo garment ({id}) or a catalogue one ({id: 'product:N', product_id, sizes, colourways}). */
const chosenGarment = () => state.options.garments.find((x) => x.id === state.garment) || { id: state.garment };

/**
 * The look as a shared room may see it (room.js): the garment (demo name or catalogue product id),
 * size, colourway and display name. Never the avatar or its measurements.
 */
function currentLook() {
  const g = chosenGarment();
  return {
    ...(g.product_id ? { product_id: g.product_id } : { garment: g.id }),
    size: state.size, colourway: state.colourway, name: g.name || label(g.id),
  };
}

/** The swatch colour of a colourway name, when the page knows it. */
function colourHex(name) {
  const c = [...(state.colourways || []), ...state.options.colourways].find((x) => x.name === name);
  return c ? c.hex : null;
}

/** The shopper's own try-on session, once it is ready (what "Go on stage" shows the room). */
const readySessionId = () => (state.session && state.session.status === 'ready' ? state.session.id : null);

/** Size and colour chips of the chosen garment: a catalogue garment's own chart sizes and colourways. */
function renderChoices() {
  const g = chosenGarment();
  const o = state.options;
  const sizes = g.product_id && g.sizes && g.sizes.length ? g.sizes : o.sizes;
  const colourways = g.product_id && g.colourways && g.colourways.length ? g.colourways : o.colourways;
  if (!sizes.includes(state.size)) state.size = sizes.includes('M') ? 'M' : sizes[0];
  if (!colourways.some((c) => c.name === state.colourway)) state.colourway = colourways[0].name;
  state.colourways = colourways;
  chipGroup($('sizes'), sizes, state.size, (s) => setSize(s), (s) => ({ value: s, text: s }));
  chipGroup($('colourways'), colourways, state.colourway, (c) => setColourway(c),
    (c) => ({ value: c.name, text: label(c.name), swatch: c.hex }));
}

function renderOptions() {
  renderGarments();
  const o = state.options;
  const avatarSize = $('avatar-size');
  avatarSize.replaceChildren(...o.sizes.map((s) => new Option(s, s, s === 'M', s === 'M')));
  $('fabric').replaceChildren(...o.fabrics.map((f) => new Option(label(f), f, f === state.fabric, f === state.fabric)));
  renderChoices();
  chipGroup($('lights'), o.lights, state.light, (l) => setLight(l));
  renderFitmapLegend(o.fitmap_legend || []);
}

/** The fit map's colour bar from the server's stops [{strain_percent, hex}]: the colours the garment
 * shows, a tick at each stop (100: the fabric at rest; the end colours hold beyond the ends). */
function renderFitmapLegend(stops) {
  if (!stops.length) return;
  const lo = stops[0].strain_percent, span = stops[stops.length - 1].strain_percent - lo || 1;
  const at = (s) => (100 * (s.strain_percent - lo)) / span;
  $('fitmap-bar').style.background = `linear-gradient(to right, ${stops.map((s) => `${s.hex} ${at(s)}%`).join(', ')})`;
  $('fitmap-ticks').replaceChildren(...stops.map((s, i) => {
    const tick = document.createElement('span');
    tick.style.left = `${at(s)}%`;
    const last = i === stops.length - 1;
    tick.textContent = last ? `${s.strain_percent}+` : i === 0 ? `≤${s.strain_percent}` : `${s.strain_percent}`;
    if (i === 0 || last) tick.style.transform = `translateX(${last ? -100 : 0}%)`; // the ends within the bar
    return tick;
  }));
}

/**
 * The avatar of the request: the shopper's own, made from their photos (its id), when a front photo
 * is picked; else the reference body. A refused photo rejects with the capture check's reason.
 */
async function avatarChoice() {
  if (!photoChosen()) return { sex: $('avatar-sex').value, size: $('avatar-size').value };
  const a = await photoAvatar((s) => {
    const p = typeof s.progress === 'number' ? Math.max(0, Math.min(1, s.progress)) : 0;
    $('progress-wrap').hidden = s.status === 'ready' || s.status === 'failed';
    $('progress').value = p;
    $('progress-label').textContent = s.status === 'queued' ? 'Waiting to measure you…'
      : `Measuring you from your photos… ${Math.round(p * 100)} %`;
    document.body.dataset.avatar = s.status;
  });
  if (a.summary) say(describeAvatar(a.summary));
  return { id: a.id };
}

function showProgress(s) {
  const wrap = $('progress-wrap');
  const busy = s.status === 'queued' || s.status === 'draping';
  wrap.hidden = !busy;
  const p = typeof s.progress === 'number' ? Math.max(0, Math.min(1, s.progress > 1 ? s.progress / 100 : s.progress)) : 0;
  $('progress').value = p;
  $('progress-label').textContent = s.status === 'queued' ? 'Waiting for the tailor…' : `Draping… ${Math.round(p * 100)} %`;
  document.body.dataset.status = s.status;
}

function showAdvice(s) {
  const box = $('advice');
  box.replaceChildren();
  const best = s.recommended_size;
  if (best) {
    const p = document.createElement('p');
    p.className = 'best';
    p.textContent = best === s.size ? `Size ${best} is the best fit for you.` : `We recommend size ${best} (you are trying ${s.size}).`;
    box.append(p);
  }
  // size_advice: one line per size, best first ("M: chest ease 10 cm, ...").
  const advice = Array.isArray(s.size_advice) ? s.size_advice : [];
  if (advice.length) {
    const ol = document.createElement('ol');
    ol.className = 'advice-list';
    for (const line of advice) {
      const li = document.createElement('li');
      const text = typeof line === 'string' ? line : [line.size, line.reason].filter(Boolean).join(': ');
      const m = /^([A-Z]{1,3}):\s*(.*)$/.exec(text);
      if (m) {
        const b = document.createElement('strong');
        b.textContent = m[1];
        li.append(b, document.createTextNode(` ${m[2]}`));
      } else li.textContent = text;
      ol.append(li);
    }
    box.append(ol);
  }
  const fit = s.fit;
  if (fit && typeof fit === 'object') {
    const rows = [];
    if ('fits' in fit) rows.push(['This size', fit.fits ? 'fits' : 'is too tight']);
    if (fit.ease_cm && typeof fit.ease_cm === 'object') {
      rows.push(['Ease', Object.entries(fit.ease_cm).map(([k, v]) => `${k} ${v} cm`).join(', ')]);
    }
    if (typeof fit.strain_p95 === 'number') rows.push(['Fabric stretch (p95)', `${fit.strain_p95} %`]);
    if (typeof fit.seconds === 'number') rows.push(['Draped in', `${fit.seconds.toFixed(1)} s`]);
    const dl = document.createElement('dl');
    dl.className = 'fit';
    for (const [k, v] of rows) {
      const dt = document.createElement('dt'); dt.textContent = k;
      const dd = document.createElement('dd'); dd.textContent = v;
      dl.append(dt, dd);
    }
    if (rows.length) box.append(dl);
  }
  if (!box.children.length) box.innerHTML = '<p class="muted">No size advice for this look.</p>';
}

function onSession(s) {
  state.session = s;
  showProgress(s);
  if (s.status === 'failed') say(s.reason || 'The try-on failed. Please try again.', 'error');
}

function onReady(s) {
  showAdvice(s);
  state.lookVersion += 1;
  showLook(s.id, state.lookVersion);
  const g = state.options.garments.find((x) => x.id === s.garment) || { name: label(state.garment) };
  say(`Your ${g.name.toLowerCase()} in size ${s.size || state.size} is ready. Drag to turn it.`);
  room.sessionChanged(s.id);
}

async function start() {
  if (state.busy) return;
  state.busy = true;
  $('start').disabled = true;
  say('');
  if (state.stream) { state.stream.close(); state.stream = null; }
  try {
    // A catalogue garment drapes in its brand's fabric; a demo garment in the chosen one.
    const g = chosenGarment();
    const s = await createTryOn({
      avatar: await avatarChoice(), size: state.size, colourway: state.colourway,
      ...(g.product_id ? { garment: { product_id: g.product_id } } : { garment: state.garment, fabric: state.fabric }),
    });
    onSession(s);
    room.nowTrying(currentLook(), { now: true }); // a try-on starts: the room sees "now trying"
    const stream = new TryOnStream(s.id, $('video'));
    state.stream = stream;
    wireStream(stream);
    const done = await watchStatus(s.id, onSession);
    if (done.status !== 'ready') return;
    await stream.connect();
    stream.send({ type: 'light', name: state.light });
    if (state.fitmap) stream.send({ type: 'fitmap', on: true });
    onReady(done);
  } catch (e) {
    say(e instanceof ApiError ? e.message : `Something went wrong: ${e && e.message}`, 'error');
    if (!(e instanceof ApiError)) console.warn(e);
  } finally {
    state.busy = false;
    $('start').disabled = false;
  }
}

function wireStream(stream) {
  const video = $('video');
  stream.addEventListener('stats', (e) => {
    state.serverStats = e.detail;
    clock.addStamps(e.detail.stamps);
  });
  stream.addEventListener('status', (e) => {
    // Drape status pushed on the channel (the poller also asks): keep the newest drape's.
    const s = e.detail;
    if (!state.session || (s.drapes || 0) >= (state.session.drapes || 0)) onSession({ ...state.session, ...s });
  });
  stream.addEventListener('open', () => clock.start());
  stream.addEventListener('error', (e) => say(e.detail.detail || e.detail.message || 'The server refused that.', 'error'));
  stream.addEventListener('state', (e) => {
    if (e.detail === 'failed') say('The live video was lost. Press “Try it on” to reconnect.', 'error');
  });
  video.addEventListener('playing', () => { $('stage-empty').hidden = true; }, { once: true });
}

/** Re-drape in another size: over the data channel when live, else the choice for the next start. */
async function setSize(size) {
  state.size = size;
  if (state.session) room.nowTrying(currentLook());
  const stream = state.stream;
  if (!stream || !stream.open || !state.session) return;
  const drapes = state.session.drapes || 0;
  stream.send({ type: 'size', size });
  say(`Draping size ${size}…`);
  try {
    // `drapes` counts finished drapes: the new size is on when it moves on.
    const s = await watchStatus(stream.id, onSession, {
      until: (x) => x.status === 'failed' || (x.status === 'ready' && x.size === size && (x.drapes || 0) > drapes),
    });
    if (s.status === 'ready') onReady(s);
  } catch (e) {
    say(e.message, 'error');
  }
}

function setColourway(name) {
  state.colourway = name;
  if (state.session) room.nowTrying(currentLook());
  const c = (state.colourways || state.options.colourways).find((x) => x.name === name);
  if (state.stream) state.stream.send({ type: 'colourway', colourway: name, hex: c && c.hex });
}

function setLight(name) {
  state.light = name;
  if (state.stream) state.stream.send({ type: 'light', name });
}

// The stats overlay: the server's (fps, render, encode), the browser's (decoded fps) and the
// glass-to-glass latency read from the frame stamps.
const clock = new FrameClock($('video'));
async function updateStats() {
  const out = $('stats');
  if (out.hidden) return;
  const s = state.serverStats || {};
  let decodedFps = null;
  if (state.stream && state.stream.pc) {
    const report = await state.stream.pc.getStats();
    report.forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') decodedFps = r.framesPerSecond; });
  }
  const lat = clock.summary();
  const f = (v, d = 0) => (typeof v === 'number' ? v.toFixed(d) : '–');
  const p = (v) => (v && typeof v === 'object' ? `${f(v.p50, 1)}/${f(v.p95, 1)}` : f(v, 1));
  out.textContent = `server ${f(s.fps)} fps · render ${p(s.render_ms)} · encode ${p(s.encode_ms)} ms (p50/p95)` +
    `${s.encoder ? ` · ${s.encoder}` : ''}\n` +
    `shown ${f(decodedFps)} fps · glass-to-glass ${f(lat.p50)} ms (p95 ${f(lat.p95)})`;
}

/** Linear RGB [r, g, b] (0..1, glTF base colour) or '#rrggbb' -> '#rrggbb' for a swatch. */
function swatchHex(hex) {
  if (typeof hex === 'string') return /^#[0-9a-f]{6}$/i.test(hex) ? hex : null;
  if (!Array.isArray(hex) || hex.length < 3) return null;
  const enc = (c) => (c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055);
  return '#' + hex.slice(0, 3).map((c) => Math.round(255 * Math.min(1, Math.max(0, enc(c)))).toString(16).padStart(2, '0')).join('');
}

/** The server's options (GET /api/v1/tryon/options) over the page's defaults. */
function mergeOptions(served) {
  if (!served) return DEFAULTS;
  const known = new Map(DEFAULTS.garments.map((g) => [g.id, g]));
  const ours = new Map(DEFAULTS.colourways.map((c) => [c.name, c.hex]));
  return {
    ...DEFAULTS,
    ...served,
    garments: (served.garments || DEFAULTS.garments).map((g) => ({ ...g, ...(known.get(g.id) || {}) })),
    colourways: (served.colourways || DEFAULTS.colourways).map((c) => ({ name: c.name, hex: swatchHex(c.hex) || ours.get(c.name) || '#888888' })),
  };
}

async function init() {
  state.options = mergeOptions(await getOptions());
  if (!state.options.colourways.some((c) => c.name === state.colourway)) state.colourway = state.options.colourways[0].name;
  renderOptions();
  $('fabric').addEventListener('change', (e) => { state.fabric = e.target.value; });
  $('start').addEventListener('click', start);
  $('cart-add').addEventListener('click', () => room.addToCart(currentLook()));
  $('fitmap').addEventListener('change', (e) => {
    state.fitmap = e.target.checked;
    $('fitmap-legend').hidden = !state.fitmap;
    if (state.stream) state.stream.send({ type: 'fitmap', on: state.fitmap });
  });
  $('show-stats').addEventListener('change', (e) => { $('stats').hidden = !e.target.checked; });
  attachControls($('stage'), (msg) => { if (state.stream) state.stream.send(msg); });
  setInterval(updateStats, 500);
  loadModelViewer();
  offerImmersiveAr(() => state.session && state.session.status === 'ready');
  document.body.dataset.ready = 'true';
}

// The "Shop together" panel: it asks the page for the look and the session, nothing else.
const room = initRooms({ currentLook, sessionId: readySessionId, swatch: colourHex });

// A small window for tests and the latency bench (read-only use).
window.fitroom = { state, clock, start, room, currentLook };
init();
