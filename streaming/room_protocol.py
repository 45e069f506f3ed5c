"""The shared-room wire protocol: client messages (validated), error frames, limits and close codes.

A room member's WebSocket carries text frames of one JSON object each (docs/rooms.md). Client
messages are parsed here into one frozen pydantic model per `type`; anything else becomes a
`RoomProtocolError` whose `to_event()` is the error frame sent back on that socket alone:

    {"type": "error", "code": code, "detail": message, "ref": ref?}

The HTTP bodies `RoomCreate` and `RoomJoin` live here too, so every limit of the feature is in one
module. Nothing here does I/O.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from fitroom.errors import FitroomError

MAX_MESSAGE_BYTES = 16384
REACTIONS: tuple[str, ...] = ("👍", "❤️", "😍", "🔥", "😂", "🤔", "👎")
EPHEMERAL = {"typing", "talking", "pointer", "voice", "rtc"}
ADDRESSED = {"voice", "rtc"}  # ephemeral types that may carry `to`: then delivered to that member alone
CLOSE = {"left": 1000, "bad_token": 4401, "kicked": 4403, "no_room": 4404, "replaced": 4408,
         "room_ended": 4410, "flooding": 4429}  # close reason (sent as the close frame's reason) -> code

# HTTP answers for the room codes that reach the HTTP routes (join and the snapshot/stage calls).
HTTP_STATUS = {"no_room": 404, "bad_invite": 403, "invite_expired": 410, "room_ended": 410, "room_locked": 423,
               "room_full": 409, "bad_token": 401, "no_stage": 404, "forbidden": 403, "not_your_session": 403}

REF_MAX = 64
DISPLAY_NAME_MAX = 40
ROOM_NAME_MAX = 80
PRODUCT_IDS_MAX = 50
CHAT_MAX = 1000
PRODUCT_NAME_MAX = 80
GARMENT_MAX = 40          # a demo garment's name (as POST /tryon takes it)
SIZE_MAX = 16             # a catalogue chart's size labels are up to 16 characters
COLOURWAY_MAX = 32
ID_MAX = 64               # member, item and session ids (the server's are 12-16 characters)
QTY_MAX = 10
INVITE_TTL_S = (60, 7 * 86400)
MAX_MEMBERS = (2, 64)
INT32_MAX = 2**31 - 1
# Voice (WebRTC signalling through the room, docs/rooms.md "Voice"): Chromium's audio offer or answer
# with its host candidates in it is about 1.5 KB; the SDP limit allows many more candidates and still
# leaves room in MAX_MESSAGE_BYTES for JSON's escaping of the SDP's line ends and the other fields.
RTC_SDP_MAX = 12000
RTC_CANDIDATE_MAX = 1024  # an ICE candidate line is ~100-250 characters
RTC_MID_MAX = 64
RTC_UFRAG_MAX = 256

# Bidirectional overrides and isolates can make a name or a chat line display as something it is
# not; other format characters (zero-width joiners in emoji, for one) are kept.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"\s+")
_LINE_SPACES = "\t\n\r\v\f"


class RoomProtocolError(FitroomError):
    """A refused message or action: `code` (see docs/rooms.md), a plain `detail`, the client's `ref`.

    A FitroomError, so one raised inside an HTTP route becomes `{"error": code, "detail": detail}`.
    """

    def __init__(self, code: str, detail: str, ref: str | None = None):
        super().__init__(code, detail)
        self.detail = detail
        self.ref = ref

    def to_event(self) -> dict:
        """The error frame for the socket that sent the message."""
        event = {"type": "error", "code": self.code, "detail": self.detail}
        if self.ref is not None:
            event["ref"] = self.ref
        return event

    def __repr__(self) -> str:
        return f"RoomProtocolError({self.code!r}, {self.detail!r}, ref={self.ref!r})"


def clean_text(text: str, multiline: bool = False) -> str:
    """`text` without control characters (newlines kept when `multiline`), NFC, trimmed.

    A single line also has its runs of whitespace collapsed to one space, so a display name cannot
    be padded out to look like another's.
    """
    # Lone surrogates (JSON "\ud800") cannot be encoded as UTF-8 nor stored in PostgreSQL: dropped.
    text = unicodedata.normalize("NFC", "".join(c for c in text if not "\ud800" <= c <= "\udfff"))
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        text = "".join(c for c in text if c == "\n" or unicodedata.category(c) != "Cc")
    else:
        # Tabs and newlines in a name become spaces rather than gluing two words together.
        text = "".join(" " if c in _LINE_SPACES else c for c in text
                       if c in _LINE_SPACES or unicodedata.category(c) != "Cc")
        text = _SPACES.sub(" ", text)
    return _BIDI.sub("", text).strip()


def _text(low: int, high: int, multiline: bool = False):
    """A str field, cleaned by `clean_text`, then `low`..`high` characters long."""

    def check(value: str) -> str:
        value = clean_text(value, multiline)
        if not low <= len(value) <= high:
            raise ValueError(f"must be {low} to {high} characters after trimming, not {len(value)}"
                             if low else f"must be at most {high} characters, not {len(value)}")
        return value

    return AfterValidator(check)


DisplayName = Annotated[str, _text(1, DISPLAY_NAME_MAX)]
RoomName = Annotated[str, _text(0, ROOM_NAME_MAX)]
ChatText = Annotated[str, _text(1, CHAT_MAX, multiline=True)]
ProductName = Annotated[str, _text(1, PRODUCT_NAME_MAX)]
Garment = Annotated[str, _text(1, GARMENT_MAX)]
SizeLabel = Annotated[str, _text(1, SIZE_MAX)]
ColourwayName = Annotated[str, _text(1, COLOURWAY_MAX)]
# Member, item and session ids: the server makes them (token_urlsafe, uuid), so nothing else is one.
Id = Annotated[str, Field(min_length=1, max_length=ID_MAX, pattern=r"^[A-Za-z0-9_.:-]+$")]
Ref = Annotated[str, Field(max_length=REF_MAX), AfterValidator(lambda v: _check_ref(v))]
ProductId = Annotated[int, Field(ge=1, le=INT32_MAX)]
Seq = Annotated[int, Field(ge=1, le=2**53)]  # a look is the seq of its `trying` event; JSON-safe integers
Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


def _readable_ref(ref) -> str | None:
    """`ref` when it can be echoed back: a string of at most REF_MAX characters, all encodable."""
    if isinstance(ref, str) and len(ref) <= REF_MAX and not any("\ud800" <= c <= "\udfff" for c in ref):
        return ref
    return None


def _check_ref(ref: str) -> str:
    if _readable_ref(ref) is None:
        raise ValueError("must be text without lone surrogates")
    return ref


class _Message(BaseModel):
    # strict: a bool is not 1, "3" is not 3, 1.0 is not an int.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    ref: Ref | None = None


class _Garment(_Message):
    """A product or a demo garment (exactly one), with its size and colourway."""

    product_id: ProductId | None = None
    garment: Garment | None = None
    size: SizeLabel
    colourway: ColourwayName
    name: ProductName | None = None

    @model_validator(mode="after")
    def _one_garment(self):
        if (self.product_id is None) == (self.garment is None):
            raise ValueError("give exactly one of product_id or garment")
        return self


class Chat(_Message):
    type: Literal["chat"]
    text: ChatText


class React(_Message):
    type: Literal["react"]
    emoji: Literal[REACTIONS]
    look: Seq | None = None


class Vote(_Message):
    type: Literal["vote"]
    look: Seq
    value: Annotated[int, Field(ge=-1, le=1)]  # 1, -1, or 0 to withdraw (an int: Literal would take True)


class Trying(_Garment):
    type: Literal["trying"]


class CartAdd(_Garment):
    type: Literal["cart_add"]
    qty: Annotated[int, Field(ge=1, le=QTY_MAX)] = 1


class CartRemove(_Message):
    type: Literal["cart_remove"]
    item_id: Id


class Stage(_Message):
    type: Literal["stage"]
    on: bool
    session_id: Id | None = None  # the member's own try-on session; kept server-side

    @model_validator(mode="after")
    def _session_when_on(self):
        if self.on and self.session_id is None:
            raise ValueError("session_id is required to go on stage")
        return self


class Typing(_Message):
    type: Literal["typing"]
    on: bool


class Talking(_Message):
    type: Literal["talking"]
    on: bool


class Pointer(_Message):
    type: Literal["pointer"]
    x: Unit
    y: Unit


def _check_signalling(value: str) -> str:
    """SDP and ICE text: no lone surrogates (not UTF-8) and no control characters but CR, LF, TAB."""
    if any("\ud800" <= c <= "\udfff" or (c < " " and c not in "\r\n\t") or c == "\x7f" for c in value):
        raise ValueError("must be text without control characters")
    return value


def _signalling(max_length: int, min_length: int = 0):
    """A str of `min_length`..`max_length` characters (checked first), then `_check_signalling`."""
    return Annotated[str, Field(min_length=min_length, max_length=max_length), AfterValidator(_check_signalling)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SessionDescription(_Strict):
    """An RTCSessionDescriptionInit: an offer or an answer (no rollback or pranswer: the mesh does not use them)."""

    type: Literal["offer", "answer"]
    sdp: _signalling(RTC_SDP_MAX, 1)


class IceCandidate(_Strict):
    """An RTCIceCandidateInit as `RTCIceCandidate.toJSON()` gives it ("" candidate: end of a generation)."""

    candidate: _signalling(RTC_CANDIDATE_MAX)
    sdpMid: _signalling(RTC_MID_MAX) | None = None
    sdpMLineIndex: Annotated[int, Field(ge=0, le=1023)] | None = None
    usernameFragment: _signalling(RTC_UFRAG_MAX) | None = None


class Voice(_Message):
    """I joined (`on`) or left voice; with `to`, the answer to that member's announcement only."""

    type: Literal["voice"]
    on: bool
    to: Id | None = None


class Rtc(_Message):
    """WebRTC signalling to one member: an `sdp` or a `candidate` (null: no more candidates), exactly one."""

    type: Literal["rtc"]
    to: Id
    sdp: SessionDescription | None = None
    candidate: IceCandidate | None = None

    @model_validator(mode="after")
    def _one_payload(self):
        given = {"sdp", "candidate"} & self.model_fields_set
        if len(given) != 1:
            raise ValueError("give exactly one of sdp or candidate (candidate null: the end of candidates)")
        if "sdp" in given and self.sdp is None:
            raise ValueError("sdp must be an object {type, sdp}")
        return self


class Kick(_Message):
    type: Literal["kick"]
    member: Id


class MuteChat(_Message):
    type: Literal["mute_chat"]
    on: bool
    member: Id | None = None  # None: everyone but the host


class HandOver(_Message):
    type: Literal["hand_over"]
    member: Id


class Lock(_Message):
    type: Literal["lock"]
    on: bool


class End(_Message):
    type: Literal["end"]


class Leave(_Message):
    type: Literal["leave"]


class Ping(_Message):
    type: Literal["ping"]


_MODELS = (Chat, React, Vote, Trying, CartAdd, CartRemove, Stage, Typing, Talking, Pointer, Voice, Rtc, Kick,
           MuteChat, HandOver, Lock, End, Leave, Ping)
MESSAGE_TYPES: tuple[str, ...] = tuple(m.model_fields["type"].annotation.__args__[0] for m in _MODELS)
ClientMessage = Annotated[Union[_MODELS], Field(discriminator="type")]
_adapter: TypeAdapter = TypeAdapter(ClientMessage)


def parse_client_message(raw: str | bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> ClientMessage:
    """The validated message in one WebSocket frame.

    Raises RoomProtocolError and nothing else: `too_large` (over `max_bytes` UTF-8 bytes, checked
    before parsing), `bad_json`, `invalid_message` (not an object, no type, a bad field: the detail
    names it), `unknown_type` (the detail lists the known types). The error keeps the message's
    `ref` whenever it could be read, so the client can match it.
    """
    if isinstance(raw, (bytearray, memoryview)):
        raw = bytes(raw)
    if isinstance(raw, str):
        # len() is a lower bound on the byte count: an obviously huge frame is not encoded to measure it.
        size = len(raw) if len(raw) > max_bytes else len(raw.encode("utf-8", "surrogatepass"))
    elif isinstance(raw, bytes):
        size = len(raw)
    else:
        raise RoomProtocolError("bad_json", "A message is a text frame holding one JSON object.")
    if size > max_bytes:
        raise RoomProtocolError("too_large", f"A message is at most {max_bytes} bytes; this one is larger.")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # JSONDecodeError is a ValueError
        raise RoomProtocolError("bad_json", "A message is one JSON object; this frame is not valid JSON.") from None
    if not isinstance(doc, dict):
        raise RoomProtocolError("invalid_message", f'A message is a JSON object with a "type", not a JSON {_json_kind(doc)}.')
    ref = _readable_ref(doc.get("ref"))
    kind = doc.get("type")
    if kind is None:
        raise RoomProtocolError("invalid_message", f'type: required, one of {", ".join(MESSAGE_TYPES)}.', ref)
    if kind not in MESSAGE_TYPES:  # also a non-string type (unhashable ones are not `in` a tuple of str)
        shown = repr(kind) if isinstance(kind, str) else f"a JSON {_json_kind(kind)}"
        raise RoomProtocolError("unknown_type", f"Unknown message type {shown[:80]}; known types: {', '.join(MESSAGE_TYPES)}.", ref)
    try:
        return _adapter.validate_python(doc)
    except ValidationError as e:
        raise RoomProtocolError("invalid_message", f"{kind}: {_describe(e)}", ref) from None
    except Exception:  # a validator bug must not close the socket: the message is refused instead
        raise RoomProtocolError("invalid_message", f"{kind}: the message could not be read.", ref) from None


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    return "object"


def _describe(e: ValidationError) -> str:
    """`field: what is wrong` for the first error (and how many more), without echoing the input."""
    errors = e.errors(include_url=False, include_input=False)
    first = errors[0]
    loc = list(first.get("loc", ()))
    if loc and loc[0] in MESSAGE_TYPES:  # the discriminated union puts the tag first
        loc = loc[1:]
    kind = first.get("type", "")
    if kind == "extra_forbidden":
        msg = "unknown field"
    elif kind == "missing":
        msg = "required"
    else:
        msg = str(first.get("msg", "not valid")).removeprefix("Value error, ")
    where = ".".join(str(x) for x in loc)
    text = f"{where}: {msg}" if where else msg
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more)"
    return text


# ---- HTTP bodies ----------------------------------------------------------------------------------


class RoomCreate(BaseModel):
    """`POST /api/v1/rooms`. None for `invite_ttl_s` / `max_members` means the setting's value."""

    model_config = ConfigDict(extra="forbid", strict=True)
    display_name: DisplayName
    name: RoomName = ""
    product_ids: Annotated[list[ProductId], Field(max_length=PRODUCT_IDS_MAX)] = []
    invite_ttl_s: Annotated[int, Field(ge=INVITE_TTL_S[0], le=INVITE_TTL_S[1])] | None = None
    max_members: Annotated[int, Field(ge=MAX_MEMBERS[0], le=MAX_MEMBERS[1])] | None = None

    @model_validator(mode="after")
    def _unique_products(self):
        # A product listed twice is shown once; the order the creator gave is kept.
        self.product_ids = list(dict.fromkeys(self.product_ids))
        return self


class RoomJoin(BaseModel):
    """`POST /api/v1/rooms/{room_id}/join`."""

    model_config = ConfigDict(extra="forbid", strict=True)
    invite_token: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
    display_name: DisplayName
