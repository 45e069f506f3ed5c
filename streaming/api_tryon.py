"""Try-on sessions over HTTP and WebRTC: create, status, SDP offer/answer, stats, the look as GLB/USDZ.

    POST /api/v1/tryon                 {avatar, garment, size, colourway, fabric} -> 202 status; avatar is
                                       {sex, size} (a reference body) or {id} (made from photos)
    GET  /api/v1/tryon/options         what the page can offer (garments, sizes, colourways, ...)
    GET  /api/v1/tryon/{id}            status, progress, fit summary, size advice
    POST /api/v1/tryon/{id}/offer      {sdp, type: "offer"} -> {sdp, type: "answer"}
    GET  /api/v1/tryon/{id}/stats      viewers (connected), peer connections (connecting too), fps,
                                       render/encode ms p50/p95
    GET  /api/v1/tryon/{id}/look.glb   the avatar and the draped garment (look.usdz for AR Quick Look)

`TryOnHub` (on `app.state.tryon`) holds the sessions, their video streams and the peer connections;
a peer whose connection fails or closes, that never connects, or that falls silent (a browser gone
without closing) is closed and counted down, and app shutdown closes all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from fitroom.errors import FitroomError
from streaming.api_deps import OptionalBrand, SessionDep
from streaming.control_channel import ControlChannel
from streaming.lighting import LIGHT_NAMES
from streaming.tryon_sessions import COLOURWAYS, SessionRegistry, TryOnRequest, TryOnSession
from streaming.video_track import SessionStream, route_keyframe_requests

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 30.0  # from the answer to a connected peer
# A connected peer from which nothing at all arrives for this long is gone (a browser killed or cut off
# without closing): browsers send RTCP receiver reports about every second while they receive video,
# and aioice's own consent check would take about 30 s to notice.
LIVENESS_TIMEOUT_S = 10.0
JANITOR_EVERY_S = 30.0
router = APIRouter(prefix="/api/v1/tryon", tags=["try-on"])


class AvatarSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sex: str | None = Field(None, max_length=8)
    size: str | None = Field(None, max_length=4)
    id: str | None = Field(None, max_length=40, description="an avatar made from photos (POST /api/v1/avatars)")
    path: str | None = Field(None, max_length=300, description="an avatar.json (or its folder) inside the data directory")


class ProductRef(BaseModel):
    """A catalogue garment: a published product, or the calling brand's own draft."""

    model_config = ConfigDict(extra="forbid")
    product_id: int = Field(ge=1, le=2**31 - 1)


class TryOnCreate(BaseModel):
    avatar: AvatarSpec = AvatarSpec(sex="female", size="M")
    garment: Annotated[str, Field(max_length=40)] | ProductRef = "tshirt"
    size: str = Field("M", max_length=16)  # a catalogue garment's chart labels are up to 16 characters
    colourway: str = Field("navy", max_length=32)
    hex: str | None = Field(None, pattern=r"^#[0-9a-fA-F]{6}$")
    fabric: str = Field("cotton_jersey", max_length=40)


class SdpOffer(BaseModel):
    sdp: str = Field(max_length=64 * 1024)
    type: str


def rtc_configuration(ice_servers):
    """aiortc's RTCConfiguration for `settings.ice_servers` (None when there are none: host candidates)."""
    from aiortc import RTCConfiguration, RTCIceServer

    if not ice_servers:
        return None
    return RTCConfiguration(iceServers=[RTCIceServer(urls=s["urls"], username=s.get("username"),
                                                     credential=s.get("credential")) for s in ice_servers])


class TryOnHub:
    """The app's try-on sessions, their streams and peer connections (all used on the event loop
    except the registry, which is thread-safe)."""

    def __init__(self, settings, registry: SessionRegistry | None = None, shared_encode: bool = True,
                 connect_timeout_s: float | None = None, liveness_timeout_s: float | None = None):
        self.settings = settings
        # None: the module's CONNECT_TIMEOUT_S / LIVENESS_TIMEOUT_S, read when a peer is watched.
        self.connect_timeout_s = connect_timeout_s
        self.liveness_timeout_s = liveness_timeout_s
        self.registry = registry or SessionRegistry(settings)
        self.shared_encode = shared_encode
        self.streams: dict[str, SessionStream] = {}
        self.peers: dict[object, str] = {}  # RTCPeerConnection -> session id
        self.registry.on_expire.append(self._expired)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Future] = set()
        self._janitor: asyncio.Task | None = None

    def start_janitor(self) -> None:
        """Starts (once, on the event loop) the task that keeps watched sessions alive and expires the rest."""
        if self._janitor is None or self._janitor.done():
            self._loop = asyncio.get_running_loop()
            self._janitor = asyncio.ensure_future(self._sweep())

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(JANITOR_EVERY_S)
            watched = set(self.peers.values())
            for session in self.registry.sessions():
                if session.id in watched:
                    session.touched = time.monotonic()  # a session someone watches does not expire
            await asyncio.to_thread(self.registry.expire)

    def stream(self, session: TryOnSession) -> SessionStream:
        stream = self.streams.get(session.id)
        if stream is None:
            s = self.settings

            def render():
                return session.call_render(lambda fs: fs.frame())

            def render_stats():
                return dataclasses.asdict(session.frame_source.stats)

            stream = self.streams[session.id] = SessionStream(render, s.stream_width, s.stream_height, s.stream_fps,
                                                              s.stream_bitrate, self.shared_encode, render_stats,
                                                              s.stream_encoder)
        return stream

    def peer_count(self, session_id: str | None = None) -> int:
        return sum(1 for sid in self.peers.values() if session_id is None or sid == session_id)

    def stats(self, session: TryOnSession) -> dict:
        stream = self.streams.get(session.id)
        video = stream.stats() if stream else SessionStream.empty_stats(self.shared_encode)
        viewers = sum(1 for pc, sid in self.peers.items() if sid == session.id and pc.connectionState == "connected")
        return {"session": session.id, "status": session.status, "viewers": viewers,
                "peer_connections": self.peer_count(session.id),
                "peer_connections_total": self.peer_count(), **video,
                "width": self.settings.stream_width, "height": self.settings.stream_height}

    async def answer(self, session: TryOnSession, offer: SdpOffer, video_only: bool = False) -> dict:
        """Answers a viewer's SDP offer with a peer connection sending the session's video.

        `video_only` (a room's stage viewer) sends the video only: a "control" data channel the
        viewer opens is closed, so it can neither steer the session nor read its stats. An offer
        that cannot be used is refused (FitroomError `bad_sdp`) and logged: the viewer sees the
        reason, the operator the session and the reason.
        """
        try:
            return await self._answer(session, offer, video_only)
        except FitroomError as e:
            log.warning("try-on %s: offer refused (%s): %s", session.id, e.code, e.message)
            raise

    async def _answer(self, session: TryOnSession, offer: SdpOffer, video_only: bool) -> dict:
        from aiortc import RTCPeerConnection, RTCSessionDescription

        if offer.type != "offer":
            raise FitroomError("bad_sdp", f'The description must be of type "offer", not {offer.type!r}.')
        if "m=video" not in offer.sdp:
            raise FitroomError("bad_sdp", "The offer has no video section (m=video): add a recvonly video transceiver.")
        self._loop = asyncio.get_running_loop()
        pc = RTCPeerConnection(rtc_configuration(self.settings.ice_servers))
        self.peers[pc] = session.id
        viewer = None
        control = None

        async def close():
            nonlocal viewer, control
            if control is not None:
                control.stop()
                control = None
            if viewer is not None:
                viewer.stop()
                viewer = None
            if self.peers.pop(pc, None) is not None:
                log.info("try-on %s: peer closed (%d left)", session.id, self.peer_count(session.id))
            await pc.close()

        @pc.on("connectionstatechange")
        async def on_state():
            if pc.connectionState in ("failed", "closed"):
                await close()

        async def watch():
            # A viewer that takes the answer and never connects, or one that vanishes without closing
            # (its packets stop: no RTCP, no data channel, no SCTP), would hold a peer forever.
            connect_s = self.connect_timeout_s if self.connect_timeout_s is not None else CONNECT_TIMEOUT_S
            silent_s = self.liveness_timeout_s if self.liveness_timeout_s is not None else LIVENESS_TIMEOUT_S
            loop = asyncio.get_running_loop()
            started = loop.time()
            received, heard = None, None
            while pc in self.peers:
                await asyncio.sleep(min(1.0, connect_s / 4, silent_s / 4))
                now = loop.time()
                if pc.connectionState != "connected":
                    if heard is None and now - started > connect_s and pc in self.peers:
                        log.info("try-on %s: peer never connected; closed", session.id)
                        await close()
                    continue
                count = await _bytes_received(pc)
                if count != received:
                    received, heard = count, now
                elif now - heard > silent_s and pc in self.peers:
                    log.info("try-on %s: peer silent for %.1f s (gone without closing); closed", session.id,
                             now - heard)
                    await close()

        @pc.on("datachannel")
        def on_channel(channel):
            nonlocal control
            if video_only or channel.label != "control" or control is not None:
                channel.close()
                return

            def stats():
                stream = self.streams.get(session.id)
                track = stream.live_track() if stream else None
                return {**self.stats(session), "stamps": track.recent_stamps() if track else []}

            control = ControlChannel(channel, session, self.registry, stats=stats)
            control.start()

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
            transceiver = next((t for t in pc.getTransceivers() if t.kind == "video"), None)
            if transceiver is None:
                raise FitroomError("bad_sdp", "The offer has no video section (m=video).")
            codec = self._keep_one_codec(transceiver)
            viewer = self.stream(session).viewer(codec)
            sender = pc.addTrack(viewer)
            route_keyframe_requests(sender, viewer.source)
            await pc.setLocalDescription(await pc.createAnswer())
            self._tasks.add(asyncio.ensure_future(watch()))
            self._tasks = {t for t in self._tasks if not t.done()}
        except FitroomError:
            await close()
            raise
        except Exception as e:  # aiortc raises ValueError, AttributeError, ... on a malformed SDP
            await close()
            raise FitroomError("bad_sdp", f"The SDP offer could not be used: {type(e).__name__}: {e}".strip()) from None
        return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}

    @staticmethod
    def _keep_one_codec(transceiver) -> str:
        """Narrows the answer to the one codec the session track encodes: H.264 when the offer has it
        (hardware decoders everywhere), else VP8. The pre-encoded packets only fit that codec, and
        aiortc fixes the answer's codecs when the offer is set (`setCodecPreferences` comes too late
        then), hence the edit of the transceiver's negotiated list."""
        codecs = transceiver._codecs
        for name, mime in (("h264", "video/h264"), ("vp8", "video/vp8")):
            chosen = [c for c in codecs if c.mimeType.lower() == mime]
            if chosen:
                # Only the first H.264 variant: its profile is the Baseline libx264 and NVENC produce.
                chosen = chosen[:1]
                types = {str(c.payloadType) for c in chosen}
                rtx = [c for c in codecs if c.mimeType.lower() == "video/rtx" and str(c.parameters.get("apt")) in types]
                transceiver._codecs = chosen + rtx
                return name
        raise FitroomError("bad_sdp", "The offer has no video codec the server sends (H.264 or VP8).")

    def _expired(self, session: TryOnSession) -> None:
        # Called from any thread: the streams and peers live on the event loop.
        if self._loop is not None and not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(self.close_session(session.id), self._loop)

    async def close_session(self, session_id: str) -> None:
        for pc, sid in list(self.peers.items()):
            if sid == session_id:
                self.peers.pop(pc, None)
                await pc.close()
        stream = self.streams.pop(session_id, None)
        if stream is not None:
            stream.stop()

    async def shutdown(self) -> None:
        """Closes every peer connection and stream, then the sessions."""
        for task in [self._janitor, *self._tasks]:
            if task is not None:
                task.cancel()
        pcs = list(self.peers)
        self.peers.clear()
        await asyncio.gather(*(pc.close() for pc in pcs), return_exceptions=True)
        for stream in self.streams.values():
            stream.stop()
        self.streams.clear()
        self.registry.shutdown()


async def _bytes_received(pc) -> int:
    """Bytes received so far over the peer's transports (DTLS: SRTP, SRTCP, SCTP), from getStats()."""
    report = await pc.getStats()
    return sum(getattr(s, "bytesReceived", 0) for s in report.values() if getattr(s, "type", None) == "transport")


async def get_hub(request: Request) -> TryOnHub:
    return request.app.state.tryon


HubDep = Annotated[TryOnHub, Depends(get_hub)]


def install(app, settings) -> None:
    """Puts the try-on hub on `app.state.tryon` and adds the routes."""
    app.state.tryon = TryOnHub(settings)
    app.include_router(router)


@router.post("", status_code=202)
async def create_tryon(body: TryOnCreate, hub: HubDep, db: SessionDep, viewer: OptionalBrand) -> dict:
    """Starts a try-on session; the drape runs in the background (poll GET /api/v1/tryon/{id}).

    `garment` is a demo garment's name or `{"product_id": N}` of a catalogue garment (published, or
    the calling brand's draft when its key is sent) with a ready model; its size chart, fabric and
    colourways are the defaults of `size`, `fabric` and `colourway`.
    """
    avatar = body.avatar.model_dump(exclude_none=True)
    if not avatar.get("path") and not avatar.get("id"):
        avatar.setdefault("sex", "female")
        avatar.setdefault("size", "M")
    request = TryOnRequest(avatar=avatar, **await _garment_fields(body, db, viewer))
    hub.start_janitor()
    session = await asyncio.to_thread(hub.registry.create, request)
    return session.snapshot()


async def _garment_fields(body: TryOnCreate, db, viewer) -> dict:
    """The garment part of a TryOnRequest: a demo garment as sent, or a catalogue garment with its
    own reference size, first colourway and fabric where the caller gave none."""
    fields = {"garment": body.garment, "size": body.size, "colourway": body.colourway, "fabric": body.fabric,
              "hex": body.hex}
    if not isinstance(body.garment, ProductRef):
        return fields
    from assets.catalog_tryon import tryon_garment

    product = await asyncio.to_thread(tryon_garment, db, viewer, body.garment.product_id)
    given = body.model_fields_set
    fields.update(garment=product.id, product=product)
    if "size" not in given:
        ref = product.reference["size"].lower()
        fields["size"] = next((s for s in product.sizes if s.lower() == ref), product.sizes[0])
    if "colourway" not in given and product.colourways:
        fields.update(colourway=product.colourways[0]["name"], hex=None)
    if "fabric" not in given and product.fabric:
        fields["fabric"] = product.fabric_name
    return fields


@router.get("/options")
def tryon_options(db: SessionDep) -> dict:
    """What a try-on can be made of: the demo garments and the published catalogue garments that
    can be tried on (`{"product_id"}` in POST /api/v1/tryon; each lists its own sizes and colourways)."""
    from assets.catalog_tryon import tryon_products
    from assets.garment_chart import GARMENT_KINDS
    from avatar.size_chart import SIZES
    from engine.fabrics import PRESETS
    from streaming.fitmap import LEGEND

    demo = [{"id": k, "name": k.replace("longsleeve", "long-sleeve top").capitalize()} for k in GARMENT_KINDS]
    return {"garments": demo + [g.public() for g in tryon_products(db)],
            "sizes": list(SIZES), "colourways": [{"name": n, "hex": h} for n, h in COLOURWAYS.items()],
            "fabrics": list(PRESETS), "lights": list(LIGHT_NAMES),
            # The fit map's colour stops (strain, % of rest length), for the page's legend.
            "fitmap_legend": [{"strain_percent": v, "hex": "#%02x%02x%02x" % c} for v, c in LEGEND]}


@router.get("/{session_id}")
async def get_tryon(session_id: str, hub: HubDep) -> dict:
    return hub.registry.get(session_id).snapshot()


@router.post("/{session_id}/offer")
async def offer(session_id: str, body: SdpOffer, hub: HubDep) -> dict:
    """Takes the viewer's SDP offer (all ICE candidates in it) and returns the answer."""
    session = hub.registry.get(session_id)
    if session.status == "failed":
        raise FitroomError("session_failed", f"The try-on failed: {session.reason}")
    return await hub.answer(session, body)


@router.get("/{session_id}/stats")
async def stats(session_id: str, hub: HubDep) -> dict:
    return hub.stats(hub.registry.get(session_id))


def _look_args(session: TryOnSession) -> dict:
    """The arguments of `look_export.look_glb/look_usdz`: the look with the garment's own maps, or
    in the session's colourway."""
    import numpy as np

    from assets.try_on import garment_surface

    if session.look is None:
        raise FitroomError("not_ready", f"The try-on is {session.status}; the look is there once it is ready.")
    return {"body_vertices": np.asarray(session.look.body.vertices, np.float32), "body_faces": session.body_faces,
            **garment_surface(session.look, session.colour, fitmap=False)}


@router.get("/{session_id}/look.glb", response_class=Response)
async def look_glb(session_id: str, hub: HubDep) -> Response:
    from streaming.look_export import look_glb as export

    data = await asyncio.to_thread(export, **_look_args(hub.registry.get(session_id)))
    return Response(data, media_type="model/gltf-binary",
                    headers={"Content-Disposition": f'inline; filename="look-{session_id}.glb"'})


@router.get("/{session_id}/look.usdz", response_class=Response)
async def look_usdz(session_id: str, hub: HubDep) -> Response:
    from streaming.look_export import look_usdz as export

    data = await asyncio.to_thread(export, **_look_args(hub.registry.get(session_id)))
    return Response(data, media_type="model/vnd.usdz+zip",
                    headers={"Content-Disposition": f'inline; filename="look-{session_id}.usdz"'})
