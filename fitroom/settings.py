"""Settings from `FITROOM_*` environment variables, read in one place."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from fitroom.errors import FitroomError

DEVICES = ("auto", "cpu", "gpu")
STREAM_ENCODERS = ("auto", "libx264", "h264_nvenc")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Process settings.

    data_dir : where converted models and catalogue data live (`FITROOM_DATA_DIR`).
    device : `auto` (CuPy when a CUDA device is usable), `cpu` or `gpu` (`FITROOM_DEVICE`).
    database_url : the catalogue database (`FITROOM_DATABASE_URL`, e.g. `postgresql://u:p@host/db`);
        None for SQLite in the data directory.
    max_upload_bytes : the largest accepted upload (`FITROOM_MAX_UPLOAD_MB`, default 100 MB).
    brand_key : the API key the command line acts with (`FITROOM_BRAND_KEY`).
    stream_width, stream_height, stream_fps, stream_bitrate : the try-on video (`FITROOM_STREAM_WIDTH`,
        `FITROOM_STREAM_HEIGHT`, `FITROOM_STREAM_FPS`, `FITROOM_STREAM_BITRATE` in bits/s).
    stream_encoder : its H.264 encoder (`FITROOM_STREAM_ENCODER`): `auto` (NVIDIA's h264_nvenc where
        it opens, else libx264), `libx264` or `h264_nvenc` (sessions fail to stream without it).
    redis_url : the shared rooms' broker (`FITROOM_REDIS_URL`, e.g. `redis://localhost:6379/0`); None: the
        in-process broker (one server process).
    room_max_members : default member limit of a room (`FITROOM_ROOM_MAX_MEMBERS`, 2-64, default 16).
    room_grace_s : how long a member whose socket dropped may come back (`FITROOM_ROOM_GRACE_S`, default 30).
    room_invite_ttl_s : default lifetime of an invite (`FITROOM_ROOM_INVITE_TTL_S`, 60 s to 7 days, default 86400).
    room_rate, room_burst : the per-member token bucket of room messages (`FITROOM_ROOM_RATE` messages/s,
        default 10; `FITROOM_ROOM_BURST`, default 20).
    room_max_message_bytes : the largest room message (`FITROOM_ROOM_MAX_MESSAGE_BYTES`, default 16384).
    ice_servers : STUN/TURN servers for WebRTC (`FITROOM_ICE_SERVERS`: a JSON list of
        {"urls": "stun:host:3478" or [...], "username"?, "credential"?}; default none). The try-on's
        server peers use them, and the page's video and voice peers (`GET /api/v1/rtc`): voice between
        friends behind home routers needs at least a STUN server, often a TURN server.
    room_flush_s : the rooms' write-behind period (`FITROOM_ROOM_FLUSH_S`, default 0.05 s): what a hard
        kill of a server can leave out of the database (a survivor stores it from Redis).
    """

    data_dir: Path = Path(".fitroom-data")
    device: str = "auto"
    database_url: str | None = dataclasses.field(default=None, repr=False)  # may hold a password
    max_upload_bytes: int = 100 * 1024 * 1024
    brand_key: str | None = dataclasses.field(default=None, repr=False)
    stream_width: int = 1280
    stream_height: int = 720
    stream_fps: int = 20
    stream_bitrate: int = 2_000_000
    stream_encoder: str = "auto"
    redis_url: str | None = dataclasses.field(default=None, repr=False)  # may hold a password
    room_max_members: int = 16
    room_grace_s: float = 30.0
    room_invite_ttl_s: int = 86_400
    room_rate: float = 10.0
    room_burst: int = 20
    room_max_message_bytes: int = 16_384
    room_flush_s: float = 0.05
    ice_servers: tuple = dataclasses.field(default=(), repr=False)  # TURN credentials

    @property
    def body_model_path(self) -> Path:
        return self.data_dir / "body_model.npz"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def upload_dir(self) -> Path:
        return self.data_dir / "uploads"

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        device = env.get("FITROOM_DEVICE", "auto").strip().lower()
        if device not in DEVICES:
            raise FitroomError(
                "bad_setting", f"FITROOM_DEVICE must be one of {', '.join(DEVICES)}, not {device!r}."
            )
        try:
            max_upload_mb = float(env.get("FITROOM_MAX_UPLOAD_MB", "100"))
        except ValueError:
            max_upload_mb = -1.0
        if not 0 < max_upload_mb <= 10_000:
            raise FitroomError("bad_setting", "FITROOM_MAX_UPLOAD_MB must be a number of megabytes between 0 and 10000.")
        return cls(
            data_dir=Path(env.get("FITROOM_DATA_DIR", ".fitroom-data")),
            device=device,
            database_url=env.get("FITROOM_DATABASE_URL") or None,
            max_upload_bytes=int(max_upload_mb * 1024 * 1024),
            brand_key=env.get("FITROOM_BRAND_KEY") or None,
            **_stream_settings(env),
            **_room_settings(env),
            ice_servers=_ice_servers(env.get("FITROOM_ICE_SERVERS", "")),
        )


_STREAM_LIMITS = {"stream_width": (64, 3840, 1280), "stream_height": (64, 2160, 720), "stream_fps": (1, 60, 20),
                  "stream_bitrate": (100_000, 50_000_000, 2_000_000)}


def _stream_settings(env) -> dict:
    """The FITROOM_STREAM_* integers, each checked against its range (sizes even: H.264 needs it), and the encoder."""
    out = {}
    for field, (low, high, default) in _STREAM_LIMITS.items():
        name = "FITROOM_" + field.upper()
        try:
            value = int(env.get(name, default))
        except ValueError:
            value = low - 1
        if not low <= value <= high or (field in ("stream_width", "stream_height") and value % 2):
            raise FitroomError("bad_setting", f"{name} must be an integer between {low} and {high} (even for sizes).")
        out[field] = value
    encoder = env.get("FITROOM_STREAM_ENCODER", "auto").strip().lower()
    if encoder not in STREAM_ENCODERS:
        raise FitroomError("bad_setting", f"FITROOM_STREAM_ENCODER must be one of {', '.join(STREAM_ENCODERS)}, not {encoder!r}.")
    out["stream_encoder"] = encoder
    return out


# field: (type, low, high, default, unit) of the FITROOM_ROOM_* settings
_ROOM_LIMITS = {
    "room_max_members": (int, 2, 64, 16, "members"),
    "room_grace_s": (float, 0.1, 3600, 30.0, "seconds"),
    "room_invite_ttl_s": (int, 60, 7 * 86_400, 86_400, "seconds"),
    "room_rate": (float, 0.1, 1000, 10.0, "messages per second"),
    "room_burst": (int, 1, 10_000, 20, "messages"),
    "room_max_message_bytes": (int, 256, 1024 * 1024, 16_384, "bytes"),
    "room_flush_s": (float, 0.01, 60, 0.05, "seconds"),
}


def _room_settings(env) -> dict:
    """FITROOM_REDIS_URL and the FITROOM_ROOM_* numbers, each checked against its range."""
    out = {}
    for field, (kind, low, high, default, unit) in _ROOM_LIMITS.items():
        name = "FITROOM_" + field.upper()
        raw = str(env.get(name, default)).strip()
        try:
            value = kind(raw)
        except ValueError:
            value = None
        if value is None or value != value or not low <= value <= high:  # value != value: NaN
            what = "an integer" if kind is int else "a number"
            raise FitroomError("bad_setting", f"{name} must be {what} between {low} and {high} ({unit}), not {raw!r}.")
        out[field] = value
    redis_url = (env.get("FITROOM_REDIS_URL") or "").strip() or None
    if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise FitroomError("bad_setting", "FITROOM_REDIS_URL must be a redis://, rediss:// or unix:// URL.")
    out["redis_url"] = redis_url
    return out


def get_settings() -> Settings:
    return Settings.from_env()


ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


def _ice_servers(raw: str) -> tuple:
    """FITROOM_ICE_SERVERS as a tuple of RTCIceServer dicts ({"urls": [...], "username"?, "credential"?})."""
    if not raw.strip():
        return ()
    name = "FITROOM_ICE_SERVERS"
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise FitroomError("bad_setting", f"{name} must be JSON (a list of servers): {e}") from None
    if not isinstance(doc, list) or len(doc) > 16:
        raise FitroomError("bad_setting", f"{name} must be a JSON list of at most 16 servers.")
    out = []
    for i, server in enumerate(doc):
        urls = server.get("urls") if isinstance(server, dict) else None
        urls = [urls] if isinstance(urls, str) else urls
        if not urls or not isinstance(urls, list) or not all(isinstance(u, str) and u.startswith(ICE_SCHEMES) for u in urls):
            raise FitroomError("bad_setting", f"{name}[{i}] needs \"urls\": stun:, stuns:, turn: or turns: URLs.")
        extra = set(server) - {"urls", "username", "credential"}
        if extra or not all(isinstance(server.get(k, ""), str) for k in ("username", "credential")):
            raise FitroomError("bad_setting", f"{name}[{i}] may have only urls, username and credential (strings).")
        if any(u.startswith(("turn:", "turns:")) for u in urls) and not (server.get("username") and server.get("credential")):
            raise FitroomError("bad_setting", f"{name}[{i}]: a TURN server needs a username and a credential.")
        out.append({"urls": list(urls), **{k: server[k] for k in ("username", "credential") if k in server}})
    return tuple(out)
