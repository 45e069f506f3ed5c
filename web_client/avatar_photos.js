// The shopper's own avatar from photos: the front photo (and an optional side one) and the height
// go to POST /api/v1/avatars; the fit runs on the server while the page polls its status. A ready
// avatar's id is remembered for the same photos and height, so trying another garment does not fit
// the body again. The photos go to the server once and are kept there only in memory.

import { ApiError, createAvatar, getAvatar } from './api.js';

const $ = (id) => document.getElementById(id);
const made = new Map(); // photos + height -> ready avatar id

const fileKey = (f) => (f ? [f.name, f.size, f.lastModified].join(':') : '');

/** True when the shopper picked a front photo (the try-on then uses their own body). */
export function photoChosen() {
  return $('photo-front').files.length > 0;
}

/**
 * The avatar of the chosen photos, made on the server if not made yet: resolves to {id}.
 * onProgress({status, progress}) is called while it is fitted; a refused photo rejects with an
 * ApiError carrying the capture check's plain reason.
 */
export async function photoAvatar(onProgress, { interval = 250 } = {}) {
  const front = $('photo-front').files[0];
  const side = $('photo-side').files[0];
  const height = Number($('photo-height').value);
  if (!front) throw new ApiError(0, 'no_photo', 'Pick a full-length front photo first.');
  if (!(height >= 120 && height <= 220)) {
    throw new ApiError(0, 'bad_height', 'Enter your height in cm (120 to 220) to make your avatar.');
  }
  const key = [fileKey(front), fileKey(side), height].join('|');
  if (made.has(key)) return { id: made.get(key) };
  const form = new FormData();
  form.append('front', front);
  if (side) form.append('side', side);
  form.append('height_cm', String(height));
  let a = await createAvatar(form);
  for (;;) {
    onProgress(a);
    if (a.status === 'ready' || a.status === 'failed') break;
    await new Promise((r) => setTimeout(r, interval));
    a = await getAvatar(a.id);
  }
  if (a.status === 'failed') throw new ApiError(422, a.error, a.reason || 'Your photo could not be used.');
  made.set(key, a.id);
  return { id: a.id, summary: a.summary };
}

/** One line about a ready avatar's measurements. */
export function describeAvatar(summary) {
  if (!summary) return 'Your avatar is ready.';
  const cm = (k) => `${Math.round(summary[k])} cm`;
  return `Your avatar: height ${cm('height_cm')}, chest ${cm('chest_cm')}, waist ${cm('waist_cm')}, hip ${cm('hip_cm')}.`;
}
