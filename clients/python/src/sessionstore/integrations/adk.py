"""Google ADK's session service (``google.adk.sessions.BaseSessionService``), kept in sessionstore.

    from google.adk.runners import Runner
    from sessionstore.integrations.adk import SessionStoreSessionService

    service = SessionStoreSessionService(address="127.0.0.1:50051")
    runner = Runner(agent=agent, app_name="weather", session_service=service)

It behaves as ADK's InMemorySessionService does (state scopes, ``temp:`` state kept only in the
caller's Session, partial events not stored, GetSessionConfig's filters, AlreadyExistsError and
SessionNotFoundError), and as its DatabaseSessionService does where storage shows through: a
write from a Session object that another writer has overtaken fails with StaleSessionError.

Storage (see sessionstore.integrations._adk_storage for the ids and labels):
- an ADK session is one sessionstore session: its first message is a header (app, user, id,
  initial session-scoped state, creation time), then one message per event, the event's JSON as
  ADK's database service writes it (``Event.model_dump_json(exclude_none=True)``), read back with
  ``Event.model_validate_json``; the session-scoped state is the header's, updated by each
  event's ``state_delta`` in order;
- each event is appended with ``expected_seq``, the log's length when the Session was read, so
  that two writers never interleave silently: the second one's append fails (StaleSessionError)
  and it must get the session again;
- ``app:`` and ``user:`` state are logs of their own (one per app, one per app and user) of
  state-delta records, appended without a condition and replayed in order, so that concurrent
  writers from different sessions keep each other's updates (the later write of one key wins).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

import grpc
from pydantic_core import to_jsonable_python

from sessionstore._common import SessionStoreError
from sessionstore.aio import AsyncSessionStoreClient
from sessionstore.integrations import _adk_storage as storage

try:
    from google.adk.errors._stale_session_error import StaleSessionError
    from google.adk.errors.already_exists_error import AlreadyExistsError
    from google.adk.errors.session_not_found_error import SessionNotFoundError
    from google.adk.events.event import Event
    from google.adk.platform import time as platform_time
    from google.adk.platform import uuid as platform_uuid
    from google.adk.sessions.base_session_service import (
        BaseSessionService,
        GetSessionConfig,
        ListSessionsResponse,
    )
    from google.adk.sessions.session import Session
    from google.adk.sessions.state import State
except ImportError as error:  # the extra is not installed
    raise ImportError(
        "sessionstore.integrations.adk needs Google ADK: "
        'pip install "sessionstore[adk]"'
    ) from error

__all__ = ["SessionStoreSessionService"]

#: What a StaleSessionError says (the words of ADK's database service, which callers match).
STALE_MESSAGE = (
    "The session has been modified in storage since it was loaded. "
    "Please reload the session before appending more events."
)

#: How many sessions list_sessions reads at once.
LIST_CONCURRENCY = 8


@dataclass
class _StoredSession:
    """An ADK session's log as read: its header, events and length (the next seq)."""

    app_name: str
    user_id: str
    session_id: str
    state: dict[str, Any]  # session-scoped state, the events' deltas applied
    events: list[Any]  # Event
    last_update_time: float
    next_seq: int


def _json_safe(state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` as JSON data; a value with no JSON form is stored as its repr, as ADK's
    database service does (rather than failing the write)."""
    try:
        return dict(to_jsonable_python(dict(state)))
    except Exception:
        return dict(to_jsonable_python(dict(state), fallback=repr))


def _split_state(state: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(app, user, session) deltas of ``state``, app and user keys without their prefix, temp
    keys dropped: how ADK's services split a state or a state delta."""
    app: dict[str, Any] = {}
    user: dict[str, Any] = {}
    session: dict[str, Any] = {}
    for key, value in state.items():
        if key.startswith(State.APP_PREFIX):
            app[key.removeprefix(State.APP_PREFIX)] = value
        elif key.startswith(State.USER_PREFIX):
            user[key.removeprefix(State.USER_PREFIX)] = value
        elif not key.startswith(State.TEMP_PREFIX):
            session[key] = value
    return app, user, session


def _merged(
    session_state: Mapping[str, Any], app_state: Mapping[str, Any], user_state: Mapping[str, Any]
) -> dict[str, Any]:
    """A Session's state: its own, then the app's and the user's under their prefixes."""
    state = dict(session_state)
    state.update({State.APP_PREFIX + key: value for key, value in app_state.items()})
    state.update({State.USER_PREFIX + key: value for key, value in user_state.items()})
    return state


def _select(events: list[Any], config: Optional[GetSessionConfig]) -> list[Any]:
    """The events GetSessionConfig keeps, as InMemorySessionService selects them: the last
    ``num_recent_events``, then of those the ones from ``after_timestamp`` on."""
    if config is None:
        return events
    if config.num_recent_events is not None:
        events = events[-config.num_recent_events :] if config.num_recent_events else []
    if config.after_timestamp is not None:
        # The events after the last one older than after_timestamp (all of them when none is).
        start = len(events)
        while start > 0 and events[start - 1].timestamp >= config.after_timestamp:
            start -= 1
        events = events[start:]
    return events


class SessionStoreSessionService(BaseSessionService):  # type: ignore[misc,unused-ignore]
    """An ADK session service whose sessions, events and state live in a sessionstore server.

    Give ``address`` (``host:port``; plaintext to a loopback address, TLS to any other) or
    ``client``, an ``AsyncSessionStoreClient`` of your own (e.g. with a token or TLS options),
    which ``close()`` leaves open; with neither, 127.0.0.1:50051. ``id_prefix`` starts the id of
    every sessionstore session this service writes (default ``adk:``), so that services with
    different prefixes on one server do not see each other's sessions.

    Failures of the server are raised as ``sessionstore.SessionStoreError``, carrying the gRPC
    status code.
    """

    def __init__(
        self,
        *,
        address: Optional[str] = None,
        client: Optional[AsyncSessionStoreClient] = None,
        id_prefix: str = "adk:",
    ) -> None:
        if address is not None and client is not None:
            raise ValueError("give address or client, not both")
        self._prefix = storage.check_prefix(id_prefix)
        self._address = address if address is not None else "127.0.0.1:50051"
        self._given = client
        # A client made here is made in the event loop that first uses it (grpc.aio binds a
        # channel to the loop it is made in: one made before asyncio.run() hangs in it), and
        # made again in another loop (a service may outlive one asyncio.run()).
        self._owned: Optional[AsyncSessionStoreClient] = None
        self._owned_loop: Optional[asyncio.AbstractEventLoop] = None

    @property
    def client(self) -> AsyncSessionStoreClient:
        """The sessionstore client, for what ADK's interface does not cover (watching a
        session's events as they are appended, forks, context windows). Ask for it within the
        event loop that uses it."""
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        if self._owned is None or self._owned_loop is not loop:
            self._owned = AsyncSessionStoreClient(self._address)
            self._owned_loop = loop
        return self._owned

    def storage_id(self, app_name: str, user_id: str, session_id: str) -> str:
        """The sessionstore session id of an ADK session (see _adk_storage for the mapping)."""
        return storage.storage_id(self._prefix, "session", app_name, user_id, session_id)

    async def close(self) -> None:
        """Closes the client, if this service created it (one you gave stays open)."""
        owned, self._owned = self._owned, None
        if owned is not None and self._owned_loop is asyncio.get_running_loop():
            await owned.close()

    async def __aenter__(self) -> SessionStoreSessionService:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: Optional[dict[str, Any]] = None,
        session_id: Optional[str] = None,
    ) -> Session:
        """Creates a session (its id generated when ``session_id`` is None or blank);
        AlreadyExistsError when the user has a session with this id. ``app:`` and ``user:``
        keys of ``state`` go to the app's and user's state, ``temp:`` keys are dropped."""
        session_id = (session_id.strip() if session_id else None) or platform_uuid.new_uuid()
        app_delta, user_delta, session_state = _split_state(_json_safe(state or {}))
        create_time = platform_time.get_time()
        record = storage.header(app_name, user_id, session_id, session_state, create_time)
        try:
            ack = await self.client.append(
                self.storage_id(app_name, user_id, session_id),
                [json.dumps(record)],
                expected_seq=0,
                labels=storage.labels("session", app_name, user_id),
            )
        except SessionStoreError as error:
            if error.code == grpc.StatusCode.ABORTED:
                raise AlreadyExistsError(f"Session with id {session_id} already exists.") from None
            raise
        # The session's own record first: a duplicate id must change no app or user state.
        await self._record_scoped_state(app_name, user_id, app_delta, user_delta)
        app_state, user_state = await asyncio.gather(
            self._app_state(app_name), self.get_user_state(app_name=app_name, user_id=user_id)
        )
        session = Session(
            app_name=app_name,
            user_id=user_id,
            id=session_id,
            state=_merged(session_state, app_state, user_state),
            last_update_time=create_time,
        )
        session._storage_update_marker = str(ack.next_seq)
        return session

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: Optional[GetSessionConfig] = None,
    ) -> Optional[Session]:
        """The session with its state (the app's and user's merged in) and its events, as
        ``config`` selects them; None when there is none."""
        session_id = session_id.strip() if session_id else session_id
        stored, app_state, user_state = await asyncio.gather(
            self._read(self.storage_id(app_name, user_id, session_id)),
            self._app_state(app_name),
            self.get_user_state(app_name=app_name, user_id=user_id),
        )
        if stored is None:
            return None
        return self._session(stored, app_state, user_state, _select(stored.events, config))

    async def list_sessions(
        self, *, app_name: str, user_id: Optional[str] = None
    ) -> ListSessionsResponse:
        """The sessions of the user (of every user when ``user_id`` is None) of the app,
        without events, with their state; oldest last_update_time first."""
        listed = [
            meta.session_id
            async for meta in self.client.list(
                storage.sessions_prefix(self._prefix),
                label_selector=storage.selector(app_name, user_id),
            )
        ]
        turns = asyncio.Semaphore(LIST_CONCURRENCY)

        async def read(storage_id: str) -> Optional[_StoredSession]:
            async with turns:
                return await self._read(storage_id)

        stored = [
            s
            for s in await asyncio.gather(*(read(storage_id) for storage_id in listed))
            # Labels of hashed names may be shared: the header has the exact names.
            if s is not None
            and s.app_name == app_name
            and (user_id is None or s.user_id == user_id)
        ]
        users = sorted({s.user_id for s in stored})
        app_state, *user_states = await asyncio.gather(
            self._app_state(app_name),
            *(self.get_user_state(app_name=app_name, user_id=user) for user in users),
        )
        state_of = dict(zip(users, user_states))
        sessions = [self._session(s, app_state, state_of[s.user_id], []) for s in stored]
        sessions.sort(key=lambda s: (s.last_update_time, s.user_id, s.id))
        return ListSessionsResponse(sessions=sessions)

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Deletes the session and its events (nothing when there is none); the app's and the
        user's state stay."""
        session_id = session_id.strip() if session_id else session_id
        await self.client.delete(self.storage_id(app_name, user_id, session_id))

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        """The user's state in the app, keys without the ``user:`` prefix."""
        log = storage.storage_id(self._prefix, "user-state", app_name, user_id)
        return storage.replay_deltas(await self.client.load(log, raw=True))

    async def append_event(self, session: Session, event: Event) -> Event:
        """Stores the event (not a partial one) and applies its state delta: to ``session``
        (``temp:`` keys included, which are not stored) and to the stored session, app and user
        state. StaleSessionError when the session was changed in storage since ``session`` was
        read (get it again); SessionNotFoundError when it is not stored."""
        if event.partial:
            return event
        # A re-delivery of an event this Session holds (a retried call): stored already.
        if any(e == event for e in session.events if e.id == event.id):
            return event
        storage_id = self.storage_id(session.app_name, session.user_id, session.id)
        expected_seq = await self._expected_seq(storage_id, session)
        self._apply_temp_state(session, event)
        event = self._trim_temp_delta_state(event)
        try:
            ack = await self.client.append(
                storage_id, [event.model_dump_json(exclude_none=True)], expected_seq=expected_seq
            )
        except SessionStoreError as error:
            if error.code == grpc.StatusCode.ABORTED and error.actual_length == 0:
                raise SessionNotFoundError(f"Session {session.id} not found.") from None
            if error.code == grpc.StatusCode.ABORTED:
                raise StaleSessionError(STALE_MESSAGE) from None
            raise
        if event.actions and event.actions.state_delta:
            app_delta, user_delta, _ = _split_state(_json_safe(event.actions.state_delta))
            await self._record_scoped_state(
                session.app_name, session.user_id, app_delta, user_delta
            )
        session.last_update_time = event.timestamp
        session._storage_update_marker = str(ack.next_seq)
        committed: Event = self._commit_event_to_session(session, event)
        return committed

    async def _expected_seq(self, storage_id: str, session: Session) -> int:
        """The stored log's length as of ``session``: the marker this service set when it read or
        wrote it. A Session without one (built by hand, or by another service) is current when
        the stored log's last event is its last event, as ADK's database service decides."""
        marker = session._storage_update_marker
        if isinstance(marker, str) and marker.isdigit():
            return int(marker)
        log = await self._log(storage_id)
        if not log:
            raise SessionNotFoundError(f"Session {session.id} not found.")
        stored_last = json.loads(log[-1][1]).get("id") if len(log) > 1 else None
        session_last = session.events[-1].id if session.events else None
        if stored_last != session_last:
            raise StaleSessionError(STALE_MESSAGE)
        return log[-1][0] + 1

    async def _record_scoped_state(
        self, app_name: str, user_id: str, app_delta: dict[str, Any], user_delta: dict[str, Any]
    ) -> None:
        """Appends the app and user deltas to their logs (no condition: every writer's delta
        is kept, in the order the server took them)."""
        writes = []
        if app_delta:
            log = storage.storage_id(self._prefix, "app-state", app_name)
            writes.append(
                self.client.append(
                    log,
                    [json.dumps({storage.DELTA_KEY: app_delta})],
                    labels=storage.labels("app-state", app_name),
                )
            )
        if user_delta:
            log = storage.storage_id(self._prefix, "user-state", app_name, user_id)
            writes.append(
                self.client.append(
                    log,
                    [json.dumps({storage.DELTA_KEY: user_delta})],
                    labels=storage.labels("user-state", app_name, user_id),
                )
            )
        await asyncio.gather(*writes)

    async def _app_state(self, app_name: str) -> dict[str, Any]:
        log = storage.storage_id(self._prefix, "app-state", app_name)
        return storage.replay_deltas(await self.client.load(log, raw=True))

    async def _log(self, storage_id: str) -> list[tuple[int, str]]:
        """(seq, JSON text) of every message of a sessionstore session; [] when there is none."""
        return [item async for item in self.client.messages(storage_id, raw=True)]

    async def _read(self, storage_id: str) -> Optional[_StoredSession]:
        """An ADK session's log, decoded; None when there is none."""
        log = await self._log(storage_id)
        if not log:
            return None
        first_seq, first = log[0]
        head = json.loads(first).get(storage.HEADER_KEY) if first_seq == 0 else None
        if not isinstance(head, dict):
            raise ValueError(
                f"sessionstore session {storage_id} has no ADK session header: "
                "it was not written by SessionStoreSessionService, or was trimmed"
            )
        state = dict(head["state"])
        events = []
        for _, text in log[1:]:
            event = Event.model_validate_json(text)
            if event.actions and event.actions.state_delta:
                state.update(_split_state(event.actions.state_delta)[2])
            events.append(event)
        return _StoredSession(
            app_name=head["app_name"],
            user_id=head["user_id"],
            session_id=head["id"],
            state=state,
            events=events,
            last_update_time=events[-1].timestamp if events else head["create_time"],
            next_seq=log[-1][0] + 1,
        )

    @staticmethod
    def _session(
        stored: _StoredSession,
        app_state: Mapping[str, Any],
        user_state: Mapping[str, Any],
        events: list[Any],
    ) -> Session:
        session = Session(
            app_name=stored.app_name,
            user_id=stored.user_id,
            id=stored.session_id,
            state=_merged(stored.state, app_state, user_state),
            events=events,
            last_update_time=stored.last_update_time,
        )
        session._storage_update_marker = str(stored.next_seq)
        return session
