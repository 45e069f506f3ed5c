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

export const tryonUrl = (id, rest = '') => `/api/v1/tryon/${encodeURIComponent(id)}${rest}`;

export function createTryOn(body) { return request('POST', '/api/v1/tryon', body); }
export function getTryOn(id) { return request('GET', tryonUrl(id)); }
export function sendOffer(id, offer) { return request('POST', tryonUrl(id, '/offer'), offer); }
export function getStats(id) { return request('GET', tryonUrl(id, '/stats')); }
export function getOptions() { return request('GET', '/api/v1/tryon/options').catch(() => null); }

/** Starts an avatar from photos: form fields front, side (optional), height_cm, sex (optional). */
export function createAvatar(form) { return request('POST', '/api/v1/avatars', form); }
export function getAvatar(id) { return request('GET', `/api/v1/avatars/${encodeURIComponent(id)}`); }
