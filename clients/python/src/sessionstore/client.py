"""SessionStoreClient: the whole sessionstore API over one gRPC channel.

Messages go in as dicts (encoded compactly with json.dumps) or as raw JSON text (str or bytes, sent
exactly as given) and come out as dicts, or as the exact text that was appended with raw=True.
Every failure is a SessionStoreError carrying the gRPC status code. The client speaks plaintext to a
loopback address and TLS to any other, unless told otherwise; it can present a client certificate
(mTLS) and send a bearer token, fixed or asked for before every call.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Generic,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

import grpc

from sessionstore._common import (
    ACTUAL_LABELS_REVISION_KEY,
    ACTUAL_LENGTH_KEY,
    AUTHORIZATION_KEY,
    FIRST_SEQ_KEY,
    SESSION_ID_KEY,
    AppendAck,
    Credentials,
    ListOrder,
    Message,
    MessageIn,
    Pem,
    RewindResult,
    Rewound,
    SessionMeta,
    SessionStoreError,
    TokenSource,
    TrimResult,
    Window,
    _about,
    _ack,
    _bearer,
    _channel_credentials,
    _fork_request,
    _list_request,
    _load_request,
    _meta,
    _page_events,
    _page_messages,
    _pop_from,
    _request,
    _rewind_request,
    _rewind_result,
    _set_labels_request,
    _token_failed,
    _trim_result,
    _WindowPages,
)
from sessionstore.v1 import session_store_pb2 as pb
from sessionstore.v1 import session_store_pb2_grpc as pb_grpc

__all__ = [
    # Defined in sessionstore._common, which sessionstore.aio shares; importable from here too.
    "ACTUAL_LABELS_REVISION_KEY",
    "ACTUAL_LENGTH_KEY",
    "AUTHORIZATION_KEY",
    "FIRST_SEQ_KEY",
    "SESSION_ID_KEY",
    "AppendAck",
    "Credentials",
    "ListOrder",
    "Message",
    "MessageIn",
    "Pem",
    "RewindResult",
    "Rewound",
    "SessionMeta",
    "SessionStoreError",
    "TokenSource",
    "TrimResult",
    "Window",
    # Defined here.
    "Appender",
    "SessionStoreClient",
    "Watch",
]

T = TypeVar("T")
Item = TypeVar("Item")


def _call(function: Callable[[], T]) -> T:
    try:
        return function()
    except grpc.RpcError as error:
        raise SessionStoreError.from_rpc_error(error) from None


def _pages(pages: Iterable[T]) -> Iterator[T]:
    """The pages of a Load or Watch stream, its failure raised as SessionStoreError."""
    try:
        yield from pages
    except grpc.RpcError as error:
        raise SessionStoreError.from_rpc_error(error) from None


def _messages(
    pages: Iterable[Union[pb.LoadResponse, pb.WatchResponse]], raw: bool
) -> Iterator[Tuple[int, Any]]:
    """(seq, message) for every message of a Load or Watch stream's pages."""
    for page in _pages(pages):
        yield from _page_messages(page, raw)


def _events(pages: Iterable[pb.WatchResponse], raw: bool) -> Iterator[Union[Message, Rewound]]:
    """Message and Rewound items for the pages of a Watch stream."""
    for page in _pages(pages):
        yield from _page_events(page, raw)


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: Optional[float]
    metadata: Optional[Tuple[Tuple[str, Union[str, bytes]], ...]]
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
                raise _token_failed(error) from error
        else:
            token = self._token
        return _CallDetails(
            details.method,
            details.timeout,
            (*(details.metadata or ()), _bearer(token)),
            details.credentials,
            details.wait_for_ready,
            details.compression,
        )

    def _intercept(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._with_token(details), request)

    # The four kinds of call are intercepted alike: (continuation, details, request or requests).
    # (Their stubs' generic signatures are wider than this one's Any: hence the ignores.)
    intercept_unary_unary = _intercept  # type: ignore[assignment]
    intercept_unary_stream = _intercept  # type: ignore[assignment]
    intercept_stream_unary = _intercept  # type: ignore[assignment]
    intercept_stream_stream = _intercept  # type: ignore[assignment]


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
        # The generated gRPC code is untyped: its calls return Any, typed where they are used.
        self._stub = pb_grpc.SessionStoreStub(channel)  # type: ignore[no-untyped-call]
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
        request = _load_request(session_id, limit=n, last=True)
        pages = _call(
            lambda: self._stub.Load(request, timeout=self._timeout, metadata=_about(session_id))
        )
        return [m for _, m in _messages(pages, raw)]

    def messages(
        self, session_id: str, *, from_seq: int = 0, limit: int = 0, raw: bool = False
    ) -> Iterator[Tuple[int, Any]]:
        """Streams (seq, message) pairs of a session, as load() selects them."""
        request = _load_request(session_id, from_seq=from_seq, limit=limit)
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
        request = _load_request(
            session_id,
            from_seq=from_seq,
            limit=limit,
            max_bytes=max_bytes,
            whole_turns=whole_turns,
        )
        pages = _call(
            lambda: self._stub.Load(request, timeout=self._timeout, metadata=_about(session_id))
        )
        window = _WindowPages(raw)
        for page in _pages(pages):
            window.add(page)
        return window.window()

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
            request = _list_request(prefix, page_size, token, label_selector, order)
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
        request = _set_labels_request(session_id, labels, expected_labels_revision)
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
        request = _fork_request(session_id, at_seq, new_session_id, labels)
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
        request = _rewind_request(session_id, to_seq, expected_seq)
        response = _call(
            lambda: self._stub.Rewind(request, timeout=self._timeout, metadata=_about(session_id))
        )
        return _rewind_result(response, raw)

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
        length = _pop_from(meta)
        if length is None:
            return None
        return self.rewind(session_id, length - 1, expected_seq=length, raw=raw).dropped[0]

    def trim(self, session_id: str, before_seq: int) -> TrimResult:
        """Drops the messages before ``before_seq`` (at most the session's length); seqs do not
        change, ``meta.first_seq`` becomes the first kept one, and reading from a seq below it
        raises OUT_OF_RANGE with ``first_seq``."""
        request = pb.TrimRequest(session_id=session_id, before_seq=before_seq)
        response = _call(
            lambda: self._stub.Trim(request, timeout=self._timeout, metadata=_about(session_id))
        )
        return _trim_result(response)

    def delete(self, session_id: str) -> bool:
        """Deletes a session; returns whether it existed. It can then start again at seq 0."""
        request = pb.DeleteRequest(session_id=session_id)
        response: pb.DeleteResponse = _call(
            lambda: self._stub.Delete(request, timeout=self._timeout, metadata=_about(session_id))
        )
        return response.existed

    def flush(self, session_id: str = "") -> int:
        """Writes and fsyncs a session's buffered messages ("": every session's); returns how
        many messages it wrote."""
        request = pb.FlushRequest(session_id=session_id)
        metadata = _about(session_id) if session_id else ()
        response: pb.FlushResponse = _call(
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
