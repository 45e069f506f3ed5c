"""Shared rooms over HTTP and WebSocket (docs/rooms.md has the protocol).

    POST /api/v1/rooms                          {display_name, name?, product_ids?, invite_ttl_s?, max_members?}
                                                -> 201 {room_id, name, invite_token, invite_url,
                                                   invite_expires_at, member_id, member_token, ws_url}
    POST /api/v1/rooms/{room_id}/join           {invite_token, display_name} -> {room_id, member_id, member_token, ws_url}
    GET  /api/v1/rooms/{room_id}?token=T        {room_id, member_id, seq, room: the room as members see it}
    POST /api/v1/rooms/{room_id}/stage/offer?token=T  {sdp, type} -> the SDP answer: the on-stage
                                                member's try-on video (its shared encoder), video only
    WS   /api/v1/rooms/{room_id}/ws?token=T[&since=N]

The `RoomHub` (on `app.state.rooms`) does the work; errors are `RoomProtocolError`s, which the app
maps to `{"error": code, "detail": message}` with the statuses in `api_app.STATUS`. A socket is
always accepted before it is closed with a 44xx code, so a browser sees the code and the reason.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, WebSocket

from streaming.api_tryon import SdpOffer
from streaming.room_hub import RoomHub
from streaming.room_protocol import RoomCreate, RoomJoin

router = APIRouter(prefix="/api/v1/rooms", tags=["rooms"])


async def get_rooms(request: Request) -> RoomHub:
    return request.app.state.rooms


RoomsDep = Annotated[RoomHub, Depends(get_rooms)]
Token = Annotated[str | None, Query(max_length=128, description="the member token")]


def install(app, settings) -> None:
    """Puts the room hub on `app.state.rooms` (started and stopped by the app's lifespan) and adds the routes."""
    app.state.rooms = RoomHub(settings, app.state.db, tryon=getattr(app.state, "tryon", None))
    app.include_router(router)


@router.post("", status_code=201)
async def create_room(body: RoomCreate, rooms: RoomsDep) -> dict:
    """Creates a room; the caller is its host. Share `invite_url` (or `invite_token`) to invite others."""
    return await rooms.create(body)


@router.post("/{room_id}/join")
async def join_room(room_id: str, body: RoomJoin, rooms: RoomsDep) -> dict:
    """Joins with an invite: 404 no_room, 403 bad_invite, 410 invite_expired or room_ended, 423 room_locked,
    409 room_full."""
    return await rooms.join(room_id, body.invite_token, body.display_name)


@router.get("/{room_id}")
async def get_room(room_id: str, rooms: RoomsDep, token: Token = None) -> dict:
    """The room as its members see it, at `seq` (401 bad_token, 410 room_ended)."""
    return await rooms.snapshot(room_id, token)


@router.post("/{room_id}/stage/offer")
async def stage_offer(room_id: str, body: SdpOffer, request: Request, rooms: RoomsDep, token: Token = None) -> dict:
    """Watches whoever is on stage: answers the SDP offer with their try-on's video (404 no_stage)."""
    session = await rooms.stage_session(room_id, token)
    return await request.app.state.tryon.answer(session, body, video_only=True)


@router.websocket("/{room_id}/ws")
async def room_socket(websocket: WebSocket, room_id: str):
    """The member's live connection: welcome, replay after `since`, then events (docs/rooms.md)."""
    params = websocket.query_params
    await websocket.app.state.rooms.serve_socket(websocket, room_id, params.get("token"), params.get("since"))
