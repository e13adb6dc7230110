from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AppendRequest(_message.Message):
    __slots__ = ("session_id", "messages", "expected_seq", "sync")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SEQ_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    messages: _containers.RepeatedScalarFieldContainer[str]
    expected_seq: int
    sync: bool
    def __init__(self, session_id: _Optional[str] = ..., messages: _Optional[_Iterable[str]] = ..., expected_seq: _Optional[int] = ..., sync: _Optional[bool] = ...) -> None: ...

class AppendResponse(_message.Message):
    __slots__ = ("session_id", "first_seq", "next_seq", "durable_count")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    NEXT_SEQ_FIELD_NUMBER: _ClassVar[int]
    DURABLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    first_seq: int
    next_seq: int
    durable_count: int
    def __init__(self, session_id: _Optional[str] = ..., first_seq: _Optional[int] = ..., next_seq: _Optional[int] = ..., durable_count: _Optional[int] = ...) -> None: ...

class FlushRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class FlushResponse(_message.Message):
    __slots__ = ("flushed", "failures")
    FLUSHED_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    flushed: int
    failures: _containers.RepeatedCompositeFieldContainer[FlushFailure]
    def __init__(self, flushed: _Optional[int] = ..., failures: _Optional[_Iterable[_Union[FlushFailure, _Mapping]]] = ...) -> None: ...

class FlushFailure(_message.Message):
    __slots__ = ("session_id", "code", "message")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    code: int
    message: str
    def __init__(self, session_id: _Optional[str] = ..., code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class LoadRequest(_message.Message):
    __slots__ = ("session_id", "from_seq", "limit", "last")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    from_seq: int
    limit: int
    last: bool
    def __init__(self, session_id: _Optional[str] = ..., from_seq: _Optional[int] = ..., limit: _Optional[int] = ..., last: _Optional[bool] = ...) -> None: ...

class LoadResponse(_message.Message):
    __slots__ = ("first_seq", "messages")
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    first_seq: int
    messages: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, first_seq: _Optional[int] = ..., messages: _Optional[_Iterable[str]] = ...) -> None: ...

class SessionMeta(_message.Message):
    __slots__ = ("session_id", "created_at_ms", "agent_loop_version", "message_count", "durable_count", "updated_at_ms")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    AGENT_LOOP_VERSION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    DURABLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    created_at_ms: int
    agent_loop_version: str
    message_count: int
    durable_count: int
    updated_at_ms: int
    def __init__(self, session_id: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., agent_loop_version: _Optional[str] = ..., message_count: _Optional[int] = ..., durable_count: _Optional[int] = ..., updated_at_ms: _Optional[int] = ...) -> None: ...

class LoadMetaRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class LoadMetaResponse(_message.Message):
    __slots__ = ("meta",)
    META_FIELD_NUMBER: _ClassVar[int]
    meta: SessionMeta
    def __init__(self, meta: _Optional[_Union[SessionMeta, _Mapping]] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "prefix")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    prefix: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., prefix: _Optional[str] = ...) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("sessions", "next_page_token")
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[SessionMeta]
    next_page_token: str
    def __init__(self, sessions: _Optional[_Iterable[_Union[SessionMeta, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("existed",)
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    existed: bool
    def __init__(self, existed: _Optional[bool] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("session_id", "from_seq")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_SEQ_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    from_seq: int
    def __init__(self, session_id: _Optional[str] = ..., from_seq: _Optional[int] = ...) -> None: ...

class WatchResponse(_message.Message):
    __slots__ = ("first_seq", "messages")
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    first_seq: int
    messages: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, first_seq: _Optional[int] = ..., messages: _Optional[_Iterable[str]] = ...) -> None: ...
