// Gestures on the video -> control messages for the server's camera:
//   one-finger / mouse drag -> {"type": "orbit", "d_yaw", "d_pitch"} (degrees)
//   wheel, pinch, +/-       -> {"type": "zoom", "factor"} (> 1 moves closer)
//   two-finger drag, shift+drag, right-drag -> {"type": "pan", "dx", "dy"} (fractions of the view)
//   arrow keys              -> orbit by 10 degrees
// Moves are summed and sent at most every SEND_MS so the data channel is never flooded (the server
// refuses messages that come too often).

export const DEG_PER_PX = 0.4;
const SEND_MS = 70; // the server takes at most 30 messages a second (a pinch sends zoom and pan)

export function attachControls(el, send) {
  const pointers = new Map(); // pointerId -> {x, y}
  let acc = { yaw: 0, pitch: 0, zoom: 1, dx: 0, dy: 0 };
  let timer = null;
  let pinchDist = 0;
  let panning = false;

  function flush() {
    timer = null;
    const a = acc;
    acc = { yaw: 0, pitch: 0, zoom: 1, dx: 0, dy: 0 };
    const clamp = (v, lim) => +Math.max(-lim, Math.min(lim, v)).toFixed(4);
    if (a.yaw || a.pitch) send({ type: 'orbit', d_yaw: clamp(a.yaw, 180), d_pitch: clamp(a.pitch, 90) });
    if (Math.abs(a.zoom - 1) > 1e-4) send({ type: 'zoom', factor: +Math.max(0.21, Math.min(5, a.zoom)).toFixed(4) });
    if (a.dx || a.dy) send({ type: 'pan', dx: clamp(a.dx, 1), dy: clamp(a.dy, 1) });
  }
  const schedule = () => { if (timer === null) timer = setTimeout(flush, SEND_MS); };

  const centroid = () => {
    let x = 0, y = 0;
    for (const p of pointers.values()) { x += p.x; y += p.y; }
    return { x: x / pointers.size, y: y / pointers.size };
  };
  const spread = () => {
    const [a, b] = [...pointers.values()];
    return Math.hypot(a.x - b.x, a.y - b.y);
  };

  el.addEventListener('pointerdown', (e) => {
    el.setPointerCapture(e.pointerId);
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    panning = e.shiftKey || e.button === 2;
    if (pointers.size === 2) pinchDist = spread();
    e.preventDefault();
  });
  el.addEventListener('pointermove', (e) => {
    const p = pointers.get(e.pointerId);
    if (!p) return;
    const before = centroid();
    p.x = e.clientX; p.y = e.clientY;
    const after = centroid();
    const dx = after.x - before.x, dy = after.y - before.y;
    const r = el.getBoundingClientRect();
    if (pointers.size >= 2) {
      const d = spread();
      if (pinchDist > 0 && d > 0) acc.zoom *= d / pinchDist;
      pinchDist = d;
      acc.dx += dx / r.width; acc.dy += dy / r.height;
    } else if (panning) {
      acc.dx += dx / r.width; acc.dy += dy / r.height;
    } else {
      acc.yaw += dx * DEG_PER_PX; acc.pitch += dy * DEG_PER_PX;
    }
    schedule();
  });
  const up = (e) => {
    pointers.delete(e.pointerId);
    if (pointers.size < 2) pinchDist = 0;
  };
  el.addEventListener('pointerup', up);
  el.addEventListener('pointercancel', up);
  el.addEventListener('contextmenu', (e) => e.preventDefault());
  el.addEventListener('wheel', (e) => {
    e.preventDefault();
    const lines = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
    acc.zoom *= Math.exp(-lines * 0.0015);
    schedule();
  }, { passive: false });
  el.addEventListener('keydown', (e) => {
    const keys = {
      ArrowLeft: () => { acc.yaw -= 10; }, ArrowRight: () => { acc.yaw += 10; },
      ArrowUp: () => { acc.pitch -= 10; }, ArrowDown: () => { acc.pitch += 10; },
      '+': () => { acc.zoom *= 1.15; }, '=': () => { acc.zoom *= 1.15; }, '-': () => { acc.zoom /= 1.15; },
    };
    if (keys[e.key]) { keys[e.key](); schedule(); e.preventDefault(); }
  });
}
