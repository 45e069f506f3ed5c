// "View in your room": <model-viewer> (WebXR, Scene Viewer on Android, AR Quick Look on iOS) on
// the session's look.glb / look.usdz, and a plain WebXR `immersive-ar` entry on headsets.
// model-viewer's module is served by the app from the npm package (/vendor/model-viewer.min.js).

import { tryonUrl } from './api.js';

let viewerLoaded = null;

export function loadModelViewer() {
  if (!viewerLoaded) {
    viewerLoaded = import('/vendor/model-viewer.min.js').then(() => true, (e) => {
      console.warn('model-viewer is not available:', e && e.message);
      return false;
    });
  }
  return viewerLoaded;
}

/** Points the viewer and the links at the look of session `id` (cache-busted by `version`). */
export function showLook(id, version = 0) {
  const mv = document.getElementById('look-viewer');
  const glb = `${tryonUrl(id, '/look.glb')}?v=${version}`;
  const usdz = `${tryonUrl(id, '/look.usdz')}?v=${version}`;
  mv.setAttribute('src', glb);
  mv.setAttribute('ios-src', usdz);
  mv.hidden = false;
  const glbLink = document.getElementById('glb-link');
  glbLink.href = glb; glbLink.hidden = false;
  const usdzLink = document.getElementById('usdz-link');
  usdzLink.href = usdz; usdzLink.hidden = false;
  document.getElementById('ar-hint').textContent =
    'Turn the look in 3D here, or place it in your room on a phone or headset.';
}

/** Shows the headset AR button when the browser can start an immersive-ar WebXR session. */
export async function offerImmersiveAr(getLookUrl) {
  const button = document.getElementById('xr-enter');
  if (!navigator.xr || !navigator.xr.isSessionSupported) return false;
  let ok = false;
  try { ok = await navigator.xr.isSessionSupported('immersive-ar'); } catch { ok = false; }
  if (!ok) return false;
  button.hidden = false;
  button.addEventListener('click', () => {
    // model-viewer's `webxr` mode opens the immersive-ar session itself (hit-test placement,
    // scale, shadows), so the headset entry hands over to it once a look is loaded.
    const mv = document.getElementById('look-viewer');
    const msg = document.getElementById('ar-hint');
    if (!getLookUrl()) { msg.textContent = 'Try a garment on first, then place it in your room.'; return; }
    if (mv.canActivateAR) mv.activateAR();
    else msg.textContent = 'AR is starting as soon as the 3D look has loaded; try again in a moment.';
  });
  return true;
}
