"""SessionStoreClient: the whole sessionstore API over one gRPC channel.

Messages go in as dicts (encoded compactly with json.dumps) or as raw JSON text (str or bytes, sent
exactly as given) and come out as dicts, or as the exact text that was appended with raw=True.
Every failure is a SessionStoreError carrying the gRPC status code. The client speaks plaintext to a
loopback address and TLS to any other, unless told otherwise; it can present a client certificate
(mTLS) and send a bearer token, fixed or asked for before every call.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import os
import queue
import re
import threading
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Dict,
    Generic,
    Iterator,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

import grpc

from sessionstore.v1 import session_store_pb2 as pb
from sessionstore.v1 import session_store_pb2_grpc as pb_grpc

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

T = TypeVar("T")
Item = TypeVar("Item")


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
        code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
        details = (error.details() if isinstance(error, grpc.Call) else None) or str(error)
        reported: Dict[str, int] = {}
        if isinstance(error, grpc.Call):
            for key, value in error.trailing_metadata() or ():
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


def _call(function: Callable[[], T]) -> T:
    try:
        return function()
    except grpc.RpcError as error:
        raise SessionStoreError.from_rpc_error(error) from None


def _decode(text: str, raw: bool) -> Any:
    return text if raw else json.loads(text)


def _pages(pages: Iterator[T]) -> Iterator[T]:
    """The pages of a Load or Watch stream, its failure raised as SessionStoreError."""
    try:
        yield from pages
    except grpc.RpcError as error:
        raise SessionStoreError.from_rpc_error(error) from None


def _messages(pages: Iterator[Any], raw: bool) -> Iterator[Tuple[int, Any]]:
    """(seq, message) for every message of a Load or Watch stream's pages."""
    for page in _pages(pages):
        for offset, text in enumerate(page.messages):
            yield page.first_seq + offset, _decode(text, raw)


def _events(pages: Iterator[Any], raw: bool) -> Iterator[Union[Message, Rewound]]:
    """Message and Rewound items for the pages of a Watch stream."""
    for page in _pages(pages):
        if page.HasField("rewound_to"):
            yield Rewound(page.rewound_to)
        for offset, text in enumerate(page.messages):
            yield Message(page.first_seq + offset, _decode(text, raw))


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


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: Optional[float]
    metadata: Optional[Sequence[Tuple[str, Union[str, bytes]]]]
    credentials: Optional[grpc.CallCredentials]
    wait_for_ready: Optional[bool]
    compression: Optional[grpc.Compression]


class _BearerToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``authorization: Bearer <token>`` to every call, asking a token function for it each
    time. An interceptor, not grpc call credentials: those are refused on a plaintext channel,
    and a server behind a mesh sidecar, or on loopback, takes tokens over plaintext."""

    def __init__(self, token: TokenSource):
        self._token = token

    def _with_token(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        if callable(self._token):
            try:
                token = self._token()
            except Exception as error:
                raise SessionStoreError(
                    grpc.StatusCode.UNAUTHENTICATED, f"the token function failed: {error!r}"
                ) from error
        else:
            token = self._token
        return _CallDetails(
            details.method,
            details.timeout,
            [*(details.metadata or ()), (AUTHORIZATION_KEY, f"Bearer {token}")],
            details.credentials,
            details.wait_for_ready,
            details.compression,
        )

    def _intercept(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._with_token(details), request)

    # The four kinds of call are intercepted alike: (continuation, details, request or requests).
    intercept_unary_unary = _intercept
    intercept_unary_stream = _intercept
    intercept_stream_unary = _intercept
    intercept_stream_stream = _intercept


class SessionStoreClient:
    """A client of a sessionstore server; thread-safe, like the gRPC channel under it.

    ``target`` is the server's address (``host:port``, or any gRPC target). The transport is
    plaintext for a loopback target (localhost, 127.0.0.0/8, ::1, a unix socket) and TLS,
    trusting gRPC's default roots, for any other, unless ``credentials`` says "insecure", "tls" or
    gives grpc.ChannelCredentials. ``root_certificates`` (the CAs to trust instead),
    ``certificate_chain`` and ``private_key`` (a client certificate, for mTLS) make it TLS; each is
    PEM bytes or the path of a PEM file, read once, here. Or pass ``channel``, a channel of your
    own.

    ``token`` is sent as ``authorization: Bearer <token>`` on every call, over whatever transport
    the client uses: a str, or a function returning one, called before every call (each stream
    is a call: a watch or an appender opened again asks again), so that it can return a refreshed
    token. It may be called from several threads at once; if it raises, the call fails with
    UNAUTHENTICATED. ``timeout`` (seconds) bounds each unary call and each Load.
    """

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        channel: Optional[grpc.Channel] = None,
        timeout: Optional[float] = None,
        credentials: Optional[Credentials] = None,
        root_certificates: Optional[Pem] = None,
        certificate_chain: Optional[Pem] = None,
        private_key: Optional[Pem] = None,
        token: Optional[TokenSource] = None,
    ):
        self._own_channel = channel is None
        if channel is None:
            channel_credentials = _channel_credentials(
                target, credentials, root_certificates, certificate_chain, private_key
            )
            if channel_credentials is None:
                channel = grpc.insecure_channel(target)
            else:
                channel = grpc.secure_channel(target, channel_credentials)
        elif any(
            option is not None
            for option in (credentials, root_certificates, certificate_chain, private_key)
        ):
            raise ValueError(
                "a channel of your own carries its own credentials: pass no TLS options with it"
            )
        self._channel = channel
        if token is not None:
            channel = grpc.intercept_channel(channel, _BearerToken(token))
        self._stub = pb_grpc.SessionStoreStub(channel)
        self._timeout = timeout

    def close(self) -> None:
        if self._own_channel:
            self._channel.close()

    def __enter__(self) -> SessionStoreClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def stub(self) -> pb_grpc.SessionStoreStub:
        """The generated gRPC stub, for what this client does not wrap."""
        return self._stub

    def append(
        self,
        session_id: str,
        messages: Sequence[MessageIn],
        *,
        expected_seq: Optional[int] = None,
        sync: bool = False,
        labels: Optional[Mapping[str, str]] = None,
    ) -> AppendAck:
        """Appends messages (each one JSON object) to a session, in order; they are stored byte
        for byte (raw CR/LF between tokens become spaces).

        With ``expected_seq`` the append is conditional: the first message must get that seq,
        otherwise nothing is stored and SessionStoreError(ABORTED) says the session's
        ``actual_length``. With ``sync`` the ack waits until the messages are fsynced.
        ``labels`` label the session if this append creates it (an existing one keeps its own).
        """
        with Appender(self._stub, _about(session_id)) as appender:
            return appender.append(
                session_id, messages, expected_seq=expected_seq, sync=sync, labels=labels
            )

    def appender(self) -> Appender:
        """A streaming appender: one Append stream for many appends (to any sessions)."""
        return Appender(self._stub, ())

    def load(
        self, session_id: str, *, from_seq: int = 0, limit: int = 0, raw: bool = False
    ) -> List[Any]:
        """A session's messages from ``from_seq`` (at most ``limit`` of them; 0: all), as dicts
        or, with ``raw``, as the exact JSON text appended. An unknown session loads as []."""
        return [m for _, m in self.messages(session_id, from_seq=from_seq, limit=limit, raw=raw)]

    def last(self, session_id: str, n: int, *, raw: bool = False) -> List[Any]:
        """A session's last ``n`` messages, in order."""
        request = pb.LoadRequest(session_id=session_id, limit=n, last=True)
        pages = _call(
            lambda: self._stub.Load(request, timeout=self._timeout, metadata=_about(session_id))
        )
        return [m for _, m in _messages(pages, raw)]

    def messages(
        self, session_id: str, *, from_seq: int = 0, limit: int = 0, raw: bool = False
    ) -> Iterator[Tuple[int, Any]]:
        """Streams (seq, message) pairs of a session, as load() selects them."""
        request = pb.LoadRequest(session_id=session_id, from_seq=from_seq, limit=limit)
        pages = _call(
            lambda: self._stub.Load(request, timeout=self._timeout, metadata=_about(session_id))
        )
        return _messages(pages, raw)

    def window(
        self,
        session_id: str,
        *,
        max_bytes: int = 0,
        whole_turns: bool = False,
        limit: int = 0,
        from_seq: int = 0,
        raw: bool = False,
    ) -> Window:
        """A context window: the newest messages (from ``from_seq`` on) within ``limit``
        messages and ``max_bytes`` bytes (UTF-8, as stored; 0: no bound). With ``whole_turns`` it
        starts at a turn boundary (a message a person wrote), never with a tool result whose call
        is outside it, and reports the calls left without a result (``dangling_call_ids``)."""
        request = pb.LoadRequest(
            session_id=session_id,
            from_seq=from_seq,
            limit=limit,
            max_bytes=max_bytes,
            whole_turns=whole_turns,
        )
        pages = _call(
            lambda: self._stub.Load(request, timeout=self._timeout, metadata=_about(session_id))
        )
        messages: List[Any] = []
        first_seq: Optional[int] = None
        dangling: List[str] = []
        for page in _pages(pages):
            first_seq = page.first_seq if first_seq is None else first_seq
            messages.extend(_decode(text, raw) for text in page.messages)
            dangling.extend(page.dangling_call_ids)
        return Window(messages, first_seq, dangling)

    def list(
        self,
        prefix: str = "",
        *,
        page_size: int = 0,
        label_selector: str = "",
        order: ListOrder = ListOrder.BY_ID,
    ) -> Iterator[SessionMeta]:
        """Every session whose id starts with ``prefix`` and whose labels match
        ``label_selector`` (Kubernetes syntax: ``user=alice,env!=prod,team,!draft,tier in (a,b)``),
        in ``order`` (by id, or most recently appended first), fetched page by page."""
        token = ""
        while True:
            request = pb.ListRequest(
                prefix=prefix,
                page_size=page_size,
                page_token=token,
                label_selector=label_selector,
                order=order.value,
            )
            response = _call(lambda: self._stub.List(request, timeout=self._timeout))
            for meta in response.sessions:
                yield _meta(meta)
            token = response.next_page_token
            if not token:
                return

    def meta(self, session_id: str) -> SessionMeta:
        """A session's metadata; SessionStoreError(NOT_FOUND) for an unknown session."""
        request = pb.LoadMetaRequest(session_id=session_id)
        response = _call(
            lambda: self._stub.LoadMeta(request, timeout=self._timeout, metadata=_about(session_id))
        )
        return _meta(response.meta)

    def set_labels(
        self,
        session_id: str,
        labels: Mapping[str, str],
        *,
        expected_labels_revision: Optional[int] = None,
    ) -> SessionMeta:
        """Sets labels of a session (an empty value removes one); returns the new meta.
        NOT_FOUND for an unknown session. With ``expected_labels_revision``, only if the labels
        are at that revision, else ABORTED with ``actual_labels_revision``."""
        request = pb.SetLabelsRequest(session_id=session_id, labels=labels)
        if expected_labels_revision is not None:
            request.expected_labels_revision = expected_labels_revision
        response = _call(
            lambda: self._stub.SetLabels(request, timeout=self._timeout, metadata=_about(session_id))
        )
        return _meta(response.meta)

    def fork(
        self,
        session_id: str,
        at_seq: int,
        new_session_id: str,
        *,
        labels: Optional[Mapping[str, str]] = None,
    ) -> SessionMeta:
        """Creates ``new_session_id`` holding the first ``at_seq`` messages of ``session_id``
        (nothing is copied; appends to either never affect the other), labelled as the source
        with ``labels`` over them; returns its meta. ALREADY_EXISTS if ``new_session_id`` exists;
        OUT_OF_RANGE if ``at_seq`` is past the source's length or below its first kept seq."""
        request = pb.ForkRequest(
            session_id=session_id, at_seq=at_seq, new_session_id=new_session_id, labels=labels or {}
        )
        response = _call(
            lambda: self._stub.Fork(request, timeout=self._timeout, metadata=_about(session_id))
        )
        return _meta(response.meta)

    def rewind(
        self,
        session_id: str,
        to_seq: int,
        *,
        expected_seq: Optional[int] = None,
        raw: bool = False,
    ) -> RewindResult:
        """Drops the messages from ``to_seq`` on (the session's length becomes ``to_seq``) and
        returns them, as load() would, with the new meta; watchers are told. With
        ``expected_seq``, only if the session's length is that, else ABORTED with
        ``actual_length``."""
        request = pb.RewindRequest(session_id=session_id, to_seq=to_seq)
        if expected_seq is not None:
            request.expected_seq = expected_seq
        response = _call(
            lambda: self._stub.Rewind(request, timeout=self._timeout, metadata=_about(session_id))
        )
        return RewindResult(
            [_decode(text, raw) for text in response.dropped_messages], _meta(response.meta)
        )

    def pop_item(self, session_id: str, *, raw: bool = False) -> Optional[Any]:
        """Removes and returns a session's last message; None for an empty or unknown session
        (``pop_item`` of the OpenAI Agents SDK's Session). If another writer appends in between,
        it raises ABORTED rather than drop their message."""
        try:
            meta = self.meta(session_id)
        except SessionStoreError as error:
            if error.code == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        if meta.message_count == meta.first_seq:
            return None
        length = meta.message_count
        return self.rewind(session_id, length - 1, expected_seq=length, raw=raw).dropped[0]

    def trim(self, session_id: str, before_seq: int) -> TrimResult:
        """Drops the messages before ``before_seq`` (at most the session's length); seqs do not
        change, ``meta.first_seq`` becomes the first kept one, and reading from a seq below it
        raises OUT_OF_RANGE with ``first_seq``."""
        request = pb.TrimRequest(session_id=session_id, before_seq=before_seq)
        response = _call(
            lambda: self._stub.Trim(request, timeout=self._timeout, metadata=_about(session_id))
        )
        return TrimResult(response.trimmed, _meta(response.meta))

    def delete(self, session_id: str) -> bool:
        """Deletes a session; returns whether it existed. It can then start again at seq 0."""
        request = pb.DeleteRequest(session_id=session_id)
        response = _call(
            lambda: self._stub.Delete(request, timeout=self._timeout, metadata=_about(session_id))
        )
        return response.existed

    def flush(self, session_id: str = "") -> int:
        """Writes and fsyncs a session's buffered messages ("": every session's); returns how
        many messages it wrote."""
        request = pb.FlushRequest(session_id=session_id)
        metadata = _about(session_id) if session_id else ()
        response = _call(
            lambda: self._stub.Flush(request, timeout=self._timeout, metadata=metadata)
        )
        return response.flushed

    def watch(
        self, session_id: str, *, from_seq: int = 0, raw: bool = False
    ) -> Watch[Tuple[int, Any]]:
        """Streams (seq, message) pairs of a session from ``from_seq``, then each new message as
        it is appended. It ends with SessionStoreError: NOT_FOUND when the session is deleted,
        UNAVAILABLE when the server shuts down (watch again from the next seq), CANCELLED after
        cancel(). A session that does not exist yet can be watched."""
        call = self._stub.Watch(
            pb.WatchRequest(session_id=session_id, from_seq=from_seq), metadata=_about(session_id)
        )
        return Watch(call, _messages(call, raw))

    def watch_events(
        self, session_id: str, *, from_seq: int = 0, raw: bool = False
    ) -> Watch[Union[Message, Rewound]]:
        """As watch(), and tells of rewinds: yields a Message(seq, message) for each message and
        a Rewound(to_seq) when the session is rewound below what was yielded, after which the
        watch goes on from to_seq. (watch() goes on from there too, without saying so.)"""
        call = self._stub.Watch(
            pb.WatchRequest(session_id=session_id, from_seq=from_seq), metadata=_about(session_id)
        )
        return Watch(call, _events(call, raw))


class Appender:
    """One Append stream: each append() sends a request and waits for its ack. Use it as a
    context manager, or close() it. Once an append fails the stream is over, and every later
    append raises that error."""

    _END = object()

    def __init__(self, stub: pb_grpc.SessionStoreStub, metadata: Tuple[Tuple[str, str], ...]):
        self._requests: queue.Queue[Any] = queue.Queue()
        self._responses = stub.Append(iter(self._requests.get, self._END), metadata=metadata)
        self._lock = threading.Lock()
        self._error: Optional[SessionStoreError] = None
        self._closed = False

    def append(
        self,
        session_id: str,
        messages: Sequence[MessageIn],
        *,
        expected_seq: Optional[int] = None,
        sync: bool = False,
        labels: Optional[Mapping[str, str]] = None,
    ) -> AppendAck:
        """Appends to a session and returns the ack; see SessionStoreClient.append."""
        request = _request(session_id, messages, expected_seq, sync, labels)
        with self._lock:
            if self._error is not None:
                raise self._error
            if self._closed:
                raise ValueError("append on a closed Appender")
            self._requests.put(request)
            try:
                return _ack(next(self._responses))
            except grpc.RpcError as error:
                self._error = SessionStoreError.from_rpc_error(error)
                raise self._error from None
            except SessionStoreError as error:  # the token function failed: no stream opened
                self._error = error
                raise
            except StopIteration:
                self._error = SessionStoreError(
                    grpc.StatusCode.UNKNOWN, "the server ended the Append stream without an ack"
                )
                raise self._error from None

    def close(self) -> None:
        """Ends the stream and waits for the server to end it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._requests.put(self._END)
            if self._error is not None:
                return
            try:
                for _ in self._responses:
                    pass
            except grpc.RpcError as error:
                raise SessionStoreError.from_rpc_error(error) from None

    def __enter__(self) -> Appender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Watch(Generic[Item]):
    """An iterator of what SessionStoreClient.watch (``(seq, message)`` pairs) or watch_events
    (Message and Rewound) yields; cancel() ends it."""

    def __init__(self, call: Any, items: Iterator[Item]):
        self._call = call
        self._items = items

    def __iter__(self) -> Iterator[Item]:
        return self._items

    def __next__(self) -> Item:
        return next(self._items)

    def cancel(self) -> None:
        self._call.cancel()

    def __enter__(self) -> Watch[Item]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cancel()
