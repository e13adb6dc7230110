from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LIST_ORDER_BY_ID: _ClassVar[ListOrder]
    LIST_ORDER_BY_UPDATED_DESC: _ClassVar[ListOrder]
LIST_ORDER_BY_ID: ListOrder
LIST_ORDER_BY_UPDATED_DESC: ListOrder

class AppendRequest(_message.Message):
    __slots__ = ("session_id", "messages", "expected_seq", "sync", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SEQ_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    messages: _containers.RepeatedScalarFieldContainer[str]
    expected_seq: int
    sync: bool
    labels: _containers.ScalarMap[str, str]
    def __init__(self, session_id: _Optional[str] = ..., messages: _Optional[_Iterable[str]] = ..., expected_seq: _Optional[int] = ..., sync: _Optional[bool] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

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
    __slots__ = ("session_id", "from_seq", "limit", "last", "max_bytes", "whole_turns")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    WHOLE_TURNS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    from_seq: int
    limit: int
    last: bool
    max_bytes: int
    whole_turns: bool
    def __init__(self, session_id: _Optional[str] = ..., from_seq: _Optional[int] = ..., limit: _Optional[int] = ..., last: _Optional[bool] = ..., max_bytes: _Optional[int] = ..., whole_turns: _Optional[bool] = ...) -> None: ...

class LoadResponse(_message.Message):
    __slots__ = ("first_seq", "messages", "dangling_call_ids")
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    DANGLING_CALL_IDS_FIELD_NUMBER: _ClassVar[int]
    first_seq: int
    messages: _containers.RepeatedScalarFieldContainer[str]
    dangling_call_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, first_seq: _Optional[int] = ..., messages: _Optional[_Iterable[str]] = ..., dangling_call_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SessionMeta(_message.Message):
    __slots__ = ("session_id", "created_at_ms", "agent_loop_version", "message_count", "durable_count", "updated_at_ms", "labels", "labels_revision", "parent_session_id", "parent_seq", "first_seq")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    AGENT_LOOP_VERSION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    DURABLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LABELS_REVISION_FIELD_NUMBER: _ClassVar[int]
    PARENT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_SEQ_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    created_at_ms: int
    agent_loop_version: str
    message_count: int
    durable_count: int
    updated_at_ms: int
    labels: _containers.ScalarMap[str, str]
    labels_revision: int
    parent_session_id: str
    parent_seq: int
    first_seq: int
    def __init__(self, session_id: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., agent_loop_version: _Optional[str] = ..., message_count: _Optional[int] = ..., durable_count: _Optional[int] = ..., updated_at_ms: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., labels_revision: _Optional[int] = ..., parent_session_id: _Optional[str] = ..., parent_seq: _Optional[int] = ..., first_seq: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("page_size", "page_token", "prefix", "label_selector", "order")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    LABEL_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    prefix: str
    label_selector: str
    order: ListOrder
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., prefix: _Optional[str] = ..., label_selector: _Optional[str] = ..., order: _Optional[_Union[ListOrder, str]] = ...) -> None: ...

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
    __slots__ = ("first_seq", "messages", "rewound_to")
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    REWOUND_TO_FIELD_NUMBER: _ClassVar[int]
    first_seq: int
    messages: _containers.RepeatedScalarFieldContainer[str]
    rewound_to: int
    def __init__(self, first_seq: _Optional[int] = ..., messages: _Optional[_Iterable[str]] = ..., rewound_to: _Optional[int] = ...) -> None: ...

class SetLabelsRequest(_message.Message):
    __slots__ = ("session_id", "labels", "expected_labels_revision")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_LABELS_REVISION_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    labels: _containers.ScalarMap[str, str]
    expected_labels_revision: int
    def __init__(self, session_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., expected_labels_revision: _Optional[int] = ...) -> None: ...

class SetLabelsResponse(_message.Message):
    __slots__ = ("meta",)
    META_FIELD_NUMBER: _ClassVar[int]
    meta: SessionMeta
    def __init__(self, meta: _Optional[_Union[SessionMeta, _Mapping]] = ...) -> None: ...

class ForkRequest(_message.Message):
    __slots__ = ("session_id", "at_seq", "new_session_id", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    AT_SEQ_FIELD_NUMBER: _ClassVar[int]
    NEW_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    at_seq: int
    new_session_id: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, session_id: _Optional[str] = ..., at_seq: _Optional[int] = ..., new_session_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ForkResponse(_message.Message):
    __slots__ = ("meta",)
    META_FIELD_NUMBER: _ClassVar[int]
    meta: SessionMeta
    def __init__(self, meta: _Optional[_Union[SessionMeta, _Mapping]] = ...) -> None: ...

class RewindRequest(_message.Message):
    __slots__ = ("session_id", "to_seq", "expected_seq")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TO_SEQ_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SEQ_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    to_seq: int
    expected_seq: int
    def __init__(self, session_id: _Optional[str] = ..., to_seq: _Optional[int] = ..., expected_seq: _Optional[int] = ...) -> None: ...

class RewindResponse(_message.Message):
    __slots__ = ("dropped_messages", "meta")
    DROPPED_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    dropped_messages: _containers.RepeatedScalarFieldContainer[str]
    meta: SessionMeta
    def __init__(self, dropped_messages: _Optional[_Iterable[str]] = ..., meta: _Optional[_Union[SessionMeta, _Mapping]] = ...) -> None: ...

class TrimRequest(_message.Message):
    __slots__ = ("session_id", "before_seq")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    BEFORE_SEQ_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    before_seq: int
    def __init__(self, session_id: _Optional[str] = ..., before_seq: _Optional[int] = ...) -> None: ...

class TrimResponse(_message.Message):
    __slots__ = ("trimmed", "meta")
    TRIMMED_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    trimmed: int
    meta: SessionMeta
    def __init__(self, trimmed: _Optional[int] = ..., meta: _Optional[_Union[SessionMeta, _Mapping]] = ...) -> None: ...
