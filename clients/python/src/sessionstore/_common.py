"""What the sync client (sessionstore.client) and the asyncio client (sessionstore.aio) share:
the results and the error they return, how requests are built and responses decoded, how a failed
call's status and trailing metadata become a SessionStoreError, and how the channel's credentials
are chosen from the options. Nothing here makes a call.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import os
import re
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import grpc
import grpc.aio

from sessionstore.v1 import session_store_pb2 as pb


#: Trailing metadata of an ABORTED expected_seq mismatch (and of OUT_OF_RANGE past a session's
#: end): the session's actual length (decimal).
ACTUAL_LENGTH_KEY = "sessionstore-actual-length"

#: Trailing metadata of an ABORTED expected_labels_revision mismatch: the actual labels revision.
ACTUAL_LABELS_REVISION_KEY = "sessionstore-actual-labels-revision"

#: Trailing metadata of OUT_OF_RANGE below a trimmed session's start: its first kept seq.
FIRST_SEQ_KEY = "sessionstore-first-seq"

#: A message to append: a dict (JSON-encoded here) or raw JSON text, sent as is.
MessageIn = Union[Mapping[str, Any], str, bytes]

#: PEM for TLS: the PEM bytes themselves, or the path (str or os.PathLike) of a file holding them.
Pem = Union[bytes, str, "os.PathLike[str]"]

#: A bearer token: the token itself, or a function returning it, asked before every call.
TokenSource = Union[str, Callable[[], str]]

#: The transport: "insecure" (plaintext), "tls" (gRPC's default roots), or grpc ChannelCredentials.
Credentials = Union[Literal["insecure", "tls"], grpc.ChannelCredentials]

#: The metadata key of the bearer token.
AUTHORIZATION_KEY = "authorization"


class SessionStoreError(Exception):
    """A failed call. ``code`` is the gRPC status code (a ``grpc.StatusCode``): INVALID_ARGUMENT
    (bad input, nothing stored), NOT_FOUND, ALREADY_EXISTS (a fork into an existing id),
    ABORTED (an expected seq or labels revision that is not the session's), OUT_OF_RANGE (a seq
    past the session's end, or below its first kept one), RESOURCE_EXHAUSTED, UNAVAILABLE (safe
    to retry), DATA_LOSS.

    What the server reports with it, None otherwise: ``actual_length``, the session's length (for
    ABORTED on expected_seq, and OUT_OF_RANGE past the end); ``actual_labels_revision`` (for
    ABORTED on expected_labels_revision); ``first_seq``, the first seq kept (for OUT_OF_RANGE
    below a trimmed session's start: read from there)."""

    def __init__(
        self,
        code: grpc.StatusCode,
        details: str,
        actual_length: Optional[int] = None,
        *,
        actual_labels_revision: Optional[int] = None,
        first_seq: Optional[int] = None,
    ):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.actual_length = actual_length
        self.actual_labels_revision = actual_labels_revision
        self.first_seq = first_seq

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> SessionStoreError:
        """The error a failed call raised (a sync call's, or grpc.aio's AioRpcError), with what
        its trailing metadata reports."""
        # A sync call's error is a grpc.Call; grpc.aio's is an AioRpcError, which is not.
        call = error if isinstance(error, (grpc.Call, grpc.aio.AioRpcError)) else None
        code = call.code() if call is not None else grpc.StatusCode.UNKNOWN
        details = (call.details() if call is not None else None) or str(error)
        reported: Dict[str, int] = {}
        if call is not None:
            for key, value in call.trailing_metadata() or ():
                if key in (ACTUAL_LENGTH_KEY, ACTUAL_LABELS_REVISION_KEY, FIRST_SEQ_KEY):
                    reported[key] = int(value)
        return cls(
            code,
            details,
            reported.get(ACTUAL_LENGTH_KEY),
            actual_labels_revision=reported.get(ACTUAL_LABELS_REVISION_KEY),
            first_seq=reported.get(FIRST_SEQ_KEY),
        )


@dataclass(frozen=True)
class AppendAck:
    """The server's acknowledgement of one append."""

    session_id: str
    first_seq: int  #: seq given to the first message appended
    next_seq: int  #: the session's length after the append
    durable_count: int  #: messages [0, durable_count) of the session are fsynced


@dataclass(frozen=True)
class SessionMeta:
    session_id: str
    created_at_ms: int
    agent_loop_version: str
    message_count: int  #: buffered messages included
    durable_count: int  #: messages [0, durable_count) are fsynced
    updated_at_ms: int  #: when a message was last appended (or it was created, forked, rewound)
    labels: Dict[str, str]  #: e.g. {"user": "alice"}, sorted by key; set_labels changes them
    labels_revision: int  #: grows by one at every change of the labels; 0: never labelled
    parent_session_id: str  #: the session this one was forked from ("" if it was not)
    parent_seq: int  #: the fork point: the first parent_seq messages are the parent's
    first_seq: int  #: the first seq kept (those before it were trimmed)


class ListOrder(enum.Enum):
    """The order of SessionStoreClient.list."""

    BY_ID = pb.LIST_ORDER_BY_ID  #: by session id
    BY_UPDATED_DESC = pb.LIST_ORDER_BY_UPDATED_DESC  #: most recently appended first, then by id


@dataclass(frozen=True)
class Window:
    """A context window (SessionStoreClient.window): the newest messages that fit, from
    ``first_seq`` on, and the tool calls in it left without a result."""

    messages: List[Any]  #: oldest first; dicts, or text with raw=True
    first_seq: Optional[int]  #: the seq of messages[0]; None when the window is empty
    #: With whole_turns: ids of the tool calls without a result after them (an interrupted
    #: turn), oldest first; Gemini calls without an id are named "name:<function name>".
    dangling_call_ids: List[str]


@dataclass(frozen=True)
class RewindResult:
    """What SessionStoreClient.rewind dropped (oldest first, from seq to_seq on), and the meta."""

    dropped: List[Any]
    meta: SessionMeta


@dataclass(frozen=True)
class TrimResult:
    """How many messages SessionStoreClient.trim dropped, and the meta (meta.first_seq kept)."""

    trimmed: int
    meta: SessionMeta


@dataclass(frozen=True)
class Message:
    """A message a watch_events() yields, with its seq."""

    seq: int
    message: Any  #: a dict, or text with raw=True


@dataclass(frozen=True)
class Rewound:
    """What watch_events() yields when the session is rewound below what it yielded: the
    messages yielded from ``to_seq`` on are gone, and the watch goes on from ``to_seq``."""

    to_seq: int


def _encode(message: MessageIn) -> str:
    if isinstance(message, bytes):
        return message.decode("utf-8")
    if isinstance(message, str):
        return message
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def _request(
    session_id: str,
    messages: Sequence[MessageIn],
    expected_seq: Optional[int],
    sync: bool,
    labels: Optional[Mapping[str, str]],
) -> pb.AppendRequest:
    if isinstance(messages, (str, bytes, Mapping)):
        raise TypeError("messages must be a sequence of messages, not one message")
    request = pb.AppendRequest(
        session_id=session_id,
        messages=[_encode(m) for m in messages],
        sync=sync,
        labels=labels or {},
    )
    if expected_seq is not None:
        request.expected_seq = expected_seq
    return request


def _ack(response: pb.AppendResponse) -> AppendAck:
    return AppendAck(
        response.session_id, response.first_seq, response.next_seq, response.durable_count
    )


def _meta(meta: pb.SessionMeta) -> SessionMeta:
    return SessionMeta(
        meta.session_id,
        meta.created_at_ms,
        meta.agent_loop_version,
        meta.message_count,
        meta.durable_count,
        meta.updated_at_ms,
        dict(sorted(meta.labels.items())),  # by key: the wire's map order is arbitrary
        meta.labels_revision,
        meta.parent_session_id,
        meta.parent_seq,
        meta.first_seq,
    )


#: The metadata key naming the session a call is about, so that a router can hash on it.
SESSION_ID_KEY = "x-session-id"


def _about(session_id: str) -> Tuple[Tuple[str, str], ...]:
    """The metadata of a call about one session (a router may send it to that session's replica)."""
    return ((SESSION_ID_KEY, session_id),)


def _decode(text: str, raw: bool) -> Any:
    return text if raw else json.loads(text)


def _is_loopback(target: str) -> bool:
    """Whether a gRPC target names this machine (localhost, 127.0.0.0/8, ::1, a unix socket):
    plaintext is then the default, as nothing leaves the machine."""
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    address = re.sub(r"^(dns:(//[^/]*/)?|ipv4:|ipv6:)", "", target)
    bracketed = re.match(r"^\[([^\]]+)\]", address)
    host = bracketed.group(1) if bracketed else re.sub(r":\d+$", "", address)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_pem(pem: Optional[Pem]) -> Optional[bytes]:
    if pem is None or isinstance(pem, bytes):
        return pem
    with open(pem, "rb") as file:
        return file.read()


def _channel_credentials(
    target: str,
    credentials: Optional[Credentials],
    root_certificates: Optional[Pem],
    certificate_chain: Optional[Pem],
    private_key: Optional[Pem],
) -> Optional[grpc.ChannelCredentials]:
    """The channel's credentials as SessionStoreClient's options choose them; None for plaintext."""
    if (certificate_chain is None) != (private_key is None):
        raise ValueError(
            "certificate_chain and private_key go together: a client certificate and its key"
        )
    if root_certificates is not None or certificate_chain is not None:
        if credentials not in (None, "tls"):
            raise ValueError(
                "root_certificates, certificate_chain and private_key are TLS settings: "
                'give credentials="tls" or none with them'
            )
        return grpc.ssl_channel_credentials(
            _read_pem(root_certificates), _read_pem(private_key), _read_pem(certificate_chain)
        )
    if credentials is None:
        credentials = "insecure" if _is_loopback(target) else "tls"
    if credentials == "insecure":
        return None
    if credentials == "tls":
        return grpc.ssl_channel_credentials()
    if isinstance(credentials, grpc.ChannelCredentials):
        return credentials
    raise ValueError(
        f'credentials must be "insecure", "tls" or grpc.ChannelCredentials, not {credentials!r}'
    )


def _bearer(token: str) -> Tuple[str, str]:
    """The metadata entry that carries a bearer token."""
    return (AUTHORIZATION_KEY, f"Bearer {token}")


def _token_failed(error: Exception) -> SessionStoreError:
    """What a call raises when the token function asked before it raised ``error``."""
    return SessionStoreError(
        grpc.StatusCode.UNAUTHENTICATED, f"the token function failed: {error!r}"
    )


# Requests: each client method builds its request here, so that both clients send the same.


def _load_request(
    session_id: str,
    *,
    from_seq: int = 0,
    limit: int = 0,
    last: bool = False,
    max_bytes: int = 0,
    whole_turns: bool = False,
) -> pb.LoadRequest:
    return pb.LoadRequest(
        session_id=session_id,
        from_seq=from_seq,
        limit=limit,
        last=last,
        max_bytes=max_bytes,
        whole_turns=whole_turns,
    )


def _list_request(
    prefix: str, page_size: int, page_token: str, label_selector: str, order: ListOrder
) -> pb.ListRequest:
    return pb.ListRequest(
        prefix=prefix,
        page_size=page_size,
        page_token=page_token,
        label_selector=label_selector,
        order=order.value,
    )


def _set_labels_request(
    session_id: str, labels: Mapping[str, str], expected_labels_revision: Optional[int]
) -> pb.SetLabelsRequest:
    request = pb.SetLabelsRequest(session_id=session_id, labels=labels)
    if expected_labels_revision is not None:
        request.expected_labels_revision = expected_labels_revision
    return request


def _fork_request(
    session_id: str, at_seq: int, new_session_id: str, labels: Optional[Mapping[str, str]]
) -> pb.ForkRequest:
    return pb.ForkRequest(
        session_id=session_id, at_seq=at_seq, new_session_id=new_session_id, labels=labels or {}
    )


def _rewind_request(session_id: str, to_seq: int, expected_seq: Optional[int]) -> pb.RewindRequest:
    request = pb.RewindRequest(session_id=session_id, to_seq=to_seq)
    if expected_seq is not None:
        request.expected_seq = expected_seq
    return request


def _pop_from(meta: SessionMeta) -> Optional[int]:
    """The length of the session pop_item takes the last message of; None when it has none."""
    return None if meta.message_count == meta.first_seq else meta.message_count


# Responses.


def _rewind_result(response: pb.RewindResponse, raw: bool) -> RewindResult:
    return RewindResult(
        [_decode(text, raw) for text in response.dropped_messages], _meta(response.meta)
    )


def _trim_result(response: pb.TrimResponse) -> TrimResult:
    return TrimResult(response.trimmed, _meta(response.meta))


def _page_messages(page: pb.LoadResponse | pb.WatchResponse, raw: bool) -> List[Tuple[int, Any]]:
    """(seq, message) for each message of a Load or Watch page."""
    return [
        (page.first_seq + offset, _decode(text, raw)) for offset, text in enumerate(page.messages)
    ]


def _page_events(page: pb.WatchResponse, raw: bool) -> List[Union[Message, Rewound]]:
    """What watch_events() yields for a Watch page: Rewound first if it tells of a rewind."""
    events: List[Union[Message, Rewound]] = []
    if page.HasField("rewound_to"):
        events.append(Rewound(page.rewound_to))
    events.extend(Message(seq, message) for seq, message in _page_messages(page, raw))
    return events


class _WindowPages:
    """Gathers the pages of a window's Load stream into a Window."""

    def __init__(self, raw: bool):
        self._raw = raw
        self._messages: List[Any] = []
        self._first_seq: Optional[int] = None
        self._dangling: List[str] = []

    def add(self, page: pb.LoadResponse) -> None:
        if self._first_seq is None:
            self._first_seq = page.first_seq
        self._messages.extend(_decode(text, self._raw) for text in page.messages)
        self._dangling.extend(page.dangling_call_ids)

    def window(self) -> Window:
        return Window(self._messages, self._first_seq, self._dangling)
