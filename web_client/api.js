// The HTTP API of fitroom, as the page uses it. Every failure becomes an ApiError carrying the
// server's {"error", "detail"} so the page can show the plain message.

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || `Request failed (${status})`);
    this.status = status;
    this.code = code;
  }
}

async function request(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' } };
  if (body instanceof FormData) {
    init.body = body; // multipart: the browser writes the Content-Type with its boundary
  } else if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network', 'The shop could not be reached. Check your connection and try again.');
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    throw new ApiError(res.status, data && data.error, (data && data.detail) || res.statusText);
  }
  return data;
}

let rtc = null;
/** {ice_servers} for peer connections (the server's FITROOM_ICE_SERVERS), fetched once; none if it fails. */
export function rtcConfig() {
  if (!rtc) rtc = request('GET', '/api/v1/rtc').catch(() => { rtc = null; return { ice_servers: [] }; });
  return rtc;
}

export const tryonUrl = (id, rest = '') => `/api/v1/tryon/${encodeURIComponent(id)}${rest}`;

export function createTryOn(body) { return request('POST', '/api/v1/tryon', body); }
export function getTryOn(id) { return request('GET', tryonUrl(id)); }
export function sendOffer(id, offer) { return request('POST', tryonUrl(id, '/offer'), offer); }
export function getStats(id) { return request('GET', tryonUrl(id, '/stats')); }
export function getOptions() { return request('GET', '/api/v1/tryon/options').catch(() => null); }

/** Starts an avatar from photos: form fields front, side (optional), height_cm, sex (optional). */
export function createAvatar(form) { return request('POST', '/api/v1/avatars', form); }
export function getAvatar(id) { return request('GET', `/api/v1/avatars/${encodeURIComponent(id)}`); }

// Shared rooms (docs/rooms.md). The member token rides in the query, as the WebSocket does.
export const roomUrl = (id, rest = '') => `/api/v1/rooms/${encodeURIComponent(id)}${rest}`;
const tokenQuery = (token) => `?token=${encodeURIComponent(token)}`;

/** {display_name, name?, product_ids?} -> {room_id, invite_token, invite_url, member_id, member_token, ws_url, ...} */
export function createRoom(body) { return request('POST', '/api/v1/rooms', body); }
/** {invite_token, display_name} -> {room_id, member_id, member_token, ws_url} */
export function joinRoom(id, body) { return request('POST', roomUrl(id, '/join'), body); }
/** The room as this member sees it, with its `seq`. */
export function getRoom(id, token) { return request('GET', roomUrl(id) + tokenQuery(token)); }
/** The stage's video: an SDP answer to a receive-only offer (404 `no_stage` when nobody is on stage). */
export function sendStageOffer(id, token, offer) { return request('POST', roomUrl(id, '/stage/offer') + tokenQuery(token), offer); }
/** The WebSocket URL of a room (absolute, ws: or wss: like the page). */
export function roomSocketUrl(id, token, since = null) {
  const u = new URL(roomUrl(id, '/ws'), window.location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.searchParams.set('token', token);
  if (since !== null && since !== undefined) u.searchParams.set('since', String(since));
  return u.href;
}
