"""SessionStoreSessionService (sessionstore.integrations.adk) against a real sessionstore server,
with the real Google ADK and a scripted model: no network but the server's.
test/interop/adk.test.ts starts the server and runs this file with the Python of .tools/venv-adk;
by hand:

    SESSIONSTORE_ADDRESS=127.0.0.1:50051 python clients/python/tests_integrations/test_adk.py

ADK's wheel ships no tests. Its repository's tests/unittests/sessions/test_session_service.py
runs one set of behaviours over InMemorySessionService and its database services; each of those
behaviours is checked here against ours (written anew, not copied), with what is ours besides:
the storage mapping, odd names, concurrent writers, and Runner runs read back by a new service.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import unittest
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from google.adk.agents import LlmAgent
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig
from google.adk.tools.tool_context import ToolContext
from google.genai import types

from sessionstore.aio import AsyncSessionStoreClient
from sessionstore.integrations.adk import SessionStoreSessionService

ADDRESS = os.environ["SESSIONSTORE_ADDRESS"]


def new_app(name: str) -> str:
    """An app name no other test (nor an earlier run on the same server) uses."""
    return f"{name}-{uuid.uuid4().hex[:12]}"


def event(author: str = "user", **fields: Any) -> Event:
    fields.setdefault("invocation_id", f"inv-{uuid.uuid4().hex[:8]}")
    return Event(author=author, **fields)


def delta(**state: Any) -> EventActions:
    return EventActions(state_delta=state)


def with_prefix(prefix: str, **state: Any) -> dict[str, Any]:
    return {f"{prefix}:{key}": value for key, value in state.items()}


class ServiceTestCase(unittest.IsolatedAsyncioTestCase):
    """Gives each test a service on a client of the server, and an app of its own."""

    async def asyncSetUp(self) -> None:
        self.client = AsyncSessionStoreClient(ADDRESS, timeout=30)
        self.addAsyncCleanup(self.client.close)
        self.service = SessionStoreSessionService(client=self.client)
        self.app = new_app(self._testMethodName.removeprefix("test_")[:40])

    def fresh_service(self) -> SessionStoreSessionService:
        """Another service with a client of its own, as another process would have."""
        service = SessionStoreSessionService(address=ADDRESS)
        self.addAsyncCleanup(service.close)
        return service


class CreateGetListDelete(ServiceTestCase):
    def test_is_an_adk_session_service(self) -> None:
        self.assertIsInstance(self.service, BaseSessionService)

    def test_address_or_client_not_both(self) -> None:
        with self.assertRaisesRegex(ValueError, "address or client"):
            SessionStoreSessionService(address=ADDRESS, client=self.client)

    async def test_an_unknown_session_is_none(self) -> None:
        got = await self.service.get_session(app_name=self.app, user_id="u", session_id="123")
        self.assertIsNone(got)

    async def test_create_get_delete(self) -> None:
        before = time.time()
        session = await self.service.create_session(
            app_name=self.app, user_id="u", state={"key": "value"}
        )
        self.assertEqual((session.app_name, session.user_id), (self.app, "u"))
        self.assertTrue(session.id)
        self.assertEqual(session.state, {"key": "value"})
        self.assertEqual(session.events, [])
        self.assertGreaterEqual(session.last_update_time, before)
        self.assertLessEqual(session.last_update_time, time.time())

        got = await self.fresh_service().get_session(
            app_name=self.app, user_id="u", session_id=session.id
        )
        self.assertEqual(got, session)

        await self.service.delete_session(app_name=self.app, user_id="u", session_id=session.id)
        got = await self.service.get_session(app_name=self.app, user_id="u", session_id=session.id)
        self.assertIsNone(got)
        # Deleting what is not there is no error, as in ADK's services.
        await self.service.delete_session(app_name=self.app, user_id="u", session_id=session.id)

    async def test_generated_ids_differ_and_given_ids_are_stripped(self) -> None:
        first = await self.service.create_session(app_name=self.app, user_id="u")
        second = await self.service.create_session(app_name=self.app, user_id="u")
        self.assertNotEqual(first.id, second.id)
        padded = await self.service.create_session(app_name=self.app, user_id="u", session_id=" s ")
        self.assertEqual(padded.id, "s")
        got = await self.service.get_session(app_name=self.app, user_id="u", session_id="s ")
        self.assertEqual(got, padded)

    async def test_a_duplicate_id_fails_and_changes_no_state(self) -> None:
        await self.service.create_session(app_name=self.app, user_id="u", session_id="existing")
        with self.assertRaises(AlreadyExistsError):
            await self.service.create_session(
                app_name=self.app,
                user_id="u",
                session_id="existing",
                state={"app:k": "v", "user:k": "v", "k": "v"},
            )
        got = await self.service.get_session(app_name=self.app, user_id="u", session_id="existing")
        assert got is not None
        self.assertEqual(got.state, {})
        # Another user may have a session of the same id.
        other = await self.service.create_session(
            app_name=self.app, user_id="u2", session_id="existing"
        )
        self.assertEqual(other.user_id, "u2")

    async def test_list_a_users_sessions_with_their_state(self) -> None:
        ids = [f"session{i}" for i in range(5)]
        for session_id in ids:
            await self.service.create_session(
                app_name=self.app, user_id="u", session_id=session_id, state={"key": session_id}
            )
        await self.service.create_session(app_name=self.app, user_id="other", session_id="x")
        await self.service.create_session(app_name=new_app("elsewhere"), user_id="u")

        sessions = (await self.service.list_sessions(app_name=self.app, user_id="u")).sessions
        self.assertEqual(sorted(s.id for s in sessions), ids)
        for session in sessions:
            self.assertEqual(session.state, {"key": session.id})
            self.assertEqual(session.events, [])

    async def test_list_every_users_sessions(self) -> None:
        for user_id, session_id in (("user1", "1a"), ("user1", "1b"), ("user2", "2a")):
            await self.service.create_session(
                app_name=self.app, user_id=user_id, session_id=session_id, state={"k": session_id}
            )
        response = await self.service.list_sessions(app_name=self.app, user_id=None)
        by_id = {s.id: s for s in response.sessions}
        self.assertEqual(set(by_id), {"1a", "1b", "2a"})
        self.assertEqual(by_id["2a"].user_id, "user2")
        for session_id, session in by_id.items():
            self.assertEqual(session.state, {"k": session_id})
        user2 = await self.service.list_sessions(app_name=self.app, user_id="user2")
        self.assertEqual([s.id for s in user2.sessions], ["2a"])
        nobody = await self.service.list_sessions(app_name=self.app, user_id="nobody")
        self.assertEqual(nobody.sessions, [])

    async def test_list_is_ordered_by_last_update_then_user_then_id(self) -> None:
        now = time.time()
        for user_id, session_id in (("b", "1"), ("a", "2"), ("a", "3")):
            await self.service.create_session(
                app_name=self.app, user_id=user_id, session_id=session_id
            )
        touched = await self.service.get_session(app_name=self.app, user_id="b", session_id="1")
        assert touched is not None
        await self.service.append_event(touched, event(timestamp=now + 100))
        listed = (await self.service.list_sessions(app_name=self.app)).sessions
        self.assertEqual([(s.user_id, s.id) for s in listed], [("a", "2"), ("a", "3"), ("b", "1")])
        self.assertEqual(listed[-1].last_update_time, now + 100)
        # With a state merged in, as ADK's services list them.
        await self.service.append_event(touched, event(actions=delta(**{"user:x": 1, "app:y": 2})))
        listed = (await self.service.list_sessions(app_name=self.app)).sessions
        self.assertEqual(listed[-1].state, {"user:x": 1, "app:y": 2})
        self.assertEqual(listed[0].state, {"app:y": 2})


class EventLoops(unittest.TestCase):
    def test_a_service_made_before_the_loop_serves_each_loop(self) -> None:
        # As ADK's tools make services: at start-up, outside any event loop, then used in
        # asyncio.run() (once or more).
        service = SessionStoreSessionService(address=ADDRESS)
        app = new_app("loops")

        async def create_and_count() -> int:
            await service.create_session(app_name=app, user_id="u")
            listed = await service.list_sessions(app_name=app, user_id="u")
            await service.close()
            return len(listed.sessions)

        for expected in (1, 2):
            count = asyncio.run(asyncio.wait_for(create_and_count(), timeout=30))
            self.assertEqual(count, expected)


class StateScopes(ServiceTestCase):
    async def test_app_state_is_shared_by_every_user_of_the_app(self) -> None:
        s1 = await self.service.create_session(
            app_name=self.app, user_id="u1", session_id="s1", state={"app:k1": "v1"}
        )
        await self.service.append_event(s1, event(actions=delta(**{"app:k2": "v2"})))
        s2 = await self.service.create_session(app_name=self.app, user_id="u2", session_id="s2")
        self.assertEqual(s2.state, {"app:k1": "v1", "app:k2": "v2"})
        got = await self.service.get_session(app_name=self.app, user_id="u1", session_id="s1")
        assert got is not None
        self.assertEqual(got.state, {"app:k1": "v1", "app:k2": "v2"})
        elsewhere = await self.service.create_session(app_name=new_app("other"), user_id="u1")
        self.assertEqual(elsewhere.state, {})

    async def test_user_state_is_shared_only_by_the_users_sessions(self) -> None:
        s1 = await self.service.create_session(
            app_name=self.app, user_id="u1", session_id="s1", state={"user:k1": "v1"}
        )
        await self.service.append_event(s1, event(actions=delta(**{"user:k2": "v2"})))
        s1b = await self.service.create_session(app_name=self.app, user_id="u1", session_id="s1b")
        self.assertEqual(s1b.state, {"user:k1": "v1", "user:k2": "v2"})
        s2 = await self.service.create_session(app_name=self.app, user_id="u2", session_id="s2")
        self.assertEqual(s2.state, {})

    async def test_session_state_is_not_shared(self) -> None:
        s1 = await self.service.create_session(
            app_name=self.app, user_id="u1", session_id="s1", state={"sk1": "v1"}
        )
        await self.service.append_event(s1, event(actions=delta(sk2="v2")))
        got = await self.service.get_session(app_name=self.app, user_id="u1", session_id="s1")
        assert got is not None
        self.assertEqual(got.state, {"sk1": "v1", "sk2": "v2"})
        s1b = await self.service.create_session(app_name=self.app, user_id="u1", session_id="s1b")
        self.assertEqual(s1b.state, {})

    async def test_temp_state_is_in_the_callers_session_only(self) -> None:
        session = await self.service.create_session(
            app_name=self.app, user_id="u", session_id="s", state={"temp:at_create": 1}
        )
        self.assertEqual(session.state, {})
        first = event(actions=delta(**{"temp:k1": "v1", "sk": "v2"}))
        await self.service.append_event(session, first)
        # A later agent of the same invocation reads it from the same Session object...
        self.assertEqual(session.state, {"temp:k1": "v1", "sk": "v2"})
        # ...but the event keeps no temp key, and storage has none.
        self.assertEqual(first.actions.state_delta, {"sk": "v2"})
        got = await self.service.get_session(app_name=self.app, user_id="u", session_id="s")
        assert got is not None
        self.assertEqual(got.state, {"sk": "v2"})
        self.assertEqual(got.events[0].actions.state_delta, {"sk": "v2"})

    async def test_a_later_delta_of_a_key_wins(self) -> None:
        session = await self.service.create_session(app_name=self.app, user_id="u", state={"n": 0})
        for n in range(1, 4):
            await self.service.append_event(
                session, event(actions=delta(n=n, **{"user:n": n, "app:n": n}))
            )
        got = await self.service.get_session(app_name=self.app, user_id="u", session_id=session.id)
        assert got is not None
        self.assertEqual(got.state, {"n": 3, "user:n": 3, "app:n": 3})
        self.assertEqual(got, session)

    async def test_get_user_state(self) -> None:
        self.assertEqual(await self.service.get_user_state(app_name=self.app, user_id="u1"), {})
        session = await self.service.create_session(app_name=self.app, user_id="u1")
        await self.service.append_event(
            session, event("system", actions=delta(**{"user:profile": {"name": "Alice"}, "sk": 1}))
        )
        await self.service.append_event(session, event("system", actions=delta(**{"user:c": 1})))
        await self.service.append_event(session, event("system", actions=delta(**{"user:c": 2})))
        state = await self.service.get_user_state(app_name=self.app, user_id="u1")
        self.assertEqual(state, {"profile": {"name": "Alice"}, "c": 2})
        self.assertEqual(await self.service.get_user_state(app_name=self.app, user_id="u2"), {})
        other_app = await self.service.get_user_state(app_name=new_app("other"), user_id="u1")
        self.assertEqual(other_app, {})


class Events(ServiceTestCase):
    async def test_get_session_keeps_to_the_user(self) -> None:
        s1 = await self.service.create_session(app_name=self.app, user_id="u1", session_id="s1")
        await self.service.append_event(s1, event())
        await self.service.create_session(app_name=self.app, user_id="u2", session_id="s1")
        got = await self.service.get_session(app_name=self.app, user_id="u2", session_id="s1")
        assert got is not None
        self.assertEqual((got.user_id, got.events), ("u2", []))

    async def test_an_event_with_bytes_round_trips(self) -> None:
        session = await self.service.create_session(app_name=self.app, user_id="u")
        content = types.Content(
            role="user", parts=[types.Part.from_bytes(data=b"\x00image\xff", mime_type="image/png")]
        )
        grounding = types.GroundingMetadata(
            search_entry_point=types.SearchEntryPoint(sdk_blob=b"blob")
        )
        await self.service.append_event(
            session, event(content=content, grounding_metadata=grounding)
        )
        self.assertEqual(session.events[0].content, content)
        got = await self.fresh_service().get_session(
            app_name=self.app, user_id="u", session_id=session.id
        )
        assert got is not None
        self.assertEqual(len(got.events), 1)
        self.assertEqual(got.events[0].content, content)
        self.assertEqual(got.events[0].grounding_metadata, grounding)

    async def test_an_event_with_every_field_round_trips(self) -> None:
        session = await self.service.create_session(app_name=self.app, user_id="u")
        full = event(
            content=types.Content(role="user", parts=[types.Part(text="text")]),
            turn_complete=True,
            partial=False,
            actions=EventActions(
                artifact_delta={"file": 0}, transfer_to_agent="agent", escalate=True
            ),
            long_running_tool_ids={"tool1", "tool2"},
            error_code="error_code",
            error_message="error_message",
            interrupted=True,
            grounding_metadata=types.GroundingMetadata(web_search_queries=["query"]),
            usage_metadata=types.GenerateContentResponseUsageMetadata(
                prompt_token_count=1, candidates_token_count=1, total_token_count=2
            ),
            citation_metadata=types.CitationMetadata(),
            custom_metadata={"custom_key": "custom_value"},
            timestamp=1700000000.123,
            input_transcription=types.Transcription(text="in", finished=True),
            output_transcription=types.Transcription(text="out", finished=True),
        )
        await self.service.append_event(session, full)
        got = await self.fresh_service().get_session(
            app_name=self.app, user_id="u", session_id=session.id
        )
        self.assertEqual(got, session)
        self.assertEqual(session.last_update_time, 1700000000.123)

    async def test_events_are_stored_as_adks_json(self) -> None:
        session = await self.service.create_session(app_name=self.app, user_id="u", session_id="s")
        stored = event(content=types.Content(role="model", parts=[types.Part(text="hi")]))
        await self.service.append_event(session, stored)
        storage_id = self.service.storage_id(self.app, "u", "s")
        messages = await self.client.load(storage_id, raw=True)
        self.assertEqual(len(messages), 2)
        self.assertEqual(json.loads(messages[0])["adk_session"]["id"], "s")
        self.assertEqual(messages[1], stored.model_dump_json(exclude_none=True))
        meta = await self.client.meta(storage_id)
        assert meta is not None
        self.assertEqual(meta.labels["adk.sessionstore.dev/kind"], "session")
        self.assertEqual(meta.labels["adk.sessionstore.dev/user"], "u")

    async def test_last_update_time_is_the_last_events_timestamp(self) -> None:
        session = await self.service.create_session(app_name=self.app, user_id="u")
        created = session.last_update_time
        await self.service.append_event(session, event(timestamp=created + 10))
        self.assertEqual(session.last_update_time, created + 10)
        got = await self.service.get_session(app_name=self.app, user_id="u", session_id=session.id)
        assert got is not None
        self.assertEqual(got.last_update_time, created + 10)

    async def test_get_session_config(self) -> None:
        session = await self.service.create_session(app_name=self.app, user_id="u")
        for i in range(1, 6):
            await self.service.append_event(session, Event(author="user", timestamp=i))

        async def timestamps(**config: Any) -> list[float]:
            got = await self.service.get_session(
                app_name=self.app,
                user_id="u",
                session_id=session.id,
                config=GetSessionConfig(**config) if config else None,
            )
            assert got is not None
            # The state is the whole session's, whichever events are returned.
            self.assertEqual(got.last_update_time, 5)
            return [e.timestamp for e in got.events]

        self.assertEqual(await timestamps(), [1, 2, 3, 4, 5])
        self.assertEqual(await timestamps(num_recent_events=0), [])
        self.assertEqual(await timestamps(num_recent_events=3), [3, 4, 5])
        self.assertEqual(await timestamps(num_recent_events=10), [1, 2, 3, 4, 5])
        self.assertEqual(await timestamps(after_timestamp=4.0), [4, 5])
        self.assertEqual(await timestamps(after_timestamp=50), [])
        self.assertEqual(await timestamps(after_timestamp=4.0, num_recent_events=3), [4, 5])

    async def test_the_state_of_a_session_read_in_part_is_whole(self) -> None:
        session = await self.service.create_session(app_name=self.app, user_id="u")
        await self.service.append_event(session, event(actions=delta(early=1)))
        await self.service.append_event(session, event(actions=delta(late=2)))
        got = await self.service.get_session(
            app_name=self.app,
            user_id="u",
            session_id=session.id,
            config=GetSessionConfig(num_recent_events=1),
        )
        assert got is not None
        self.assertEqual(got.state, {"early": 1, "late": 2})
        # And it can be appended to: its marker is the whole log's.
        await self.service.append_event(got, event())

    async def test_partial_events_are_not_stored(self) -> None:
        session = await self.service.create_session(app_name=self.app, user_id="u")
        await self.service.append_event(session, event(partial=True, actions=delta(k=1)))
        self.assertEqual((session.events, session.state), ([], {}))
        got = await self.service.get_session(app_name=self.app, user_id="u", session_id=session.id)
        assert got is not None
        self.assertEqual((got.events, got.state), ([], {}))

    async def test_appending_an_event_again_stores_it_once(self) -> None:
        session = await self.service.create_session(app_name=self.app, user_id="u")
        again = event(actions=delta(k=1))
        await self.service.append_event(session, again)
        await self.service.append_event(session, again)
        got = await self.service.get_session(app_name=self.app, user_id="u", session_id=session.id)
        assert got is not None
        self.assertEqual(len(got.events), 1)

    async def test_appending_to_a_deleted_session_fails(self) -> None:
        session = await self.service.create_session(app_name=self.app, user_id="u")
        await self.service.delete_session(app_name=self.app, user_id="u", session_id=session.id)
        with self.assertRaises(SessionNotFoundError):
            await self.service.append_event(session, event())
        # And it is not created by the attempt.
        got = await self.service.get_session(app_name=self.app, user_id="u", session_id=session.id)
        self.assertIsNone(got)


class StaleWriters(ServiceTestCase):
    async def test_a_stale_session_cannot_append(self) -> None:
        original = await self.service.create_session(app_name=self.app, user_id="u")
        await self.service.append_event(original, event(actions=delta(sk1="v1")))
        updated = await self.fresh_service().get_session(
            app_name=self.app, user_id="u", session_id=original.id
        )
        assert updated is not None
        await self.service.append_event(updated, event(actions=delta(sk2="v2")))
        with self.assertRaisesRegex(ValueError, "modified in storage"):
            await self.service.append_event(original, event(actions=delta(sk3="v3")))
        final = await self.service.get_session(
            app_name=self.app, user_id="u", session_id=original.id
        )
        assert final is not None
        self.assertEqual(len(final.events), 2)
        self.assertEqual(final.state, {"sk1": "v1", "sk2": "v2"})

    async def test_of_two_concurrent_writers_one_wins_each_time(self) -> None:
        session = await self.service.create_session(app_name=self.app, user_id="u")
        writers = (self.service, self.fresh_service())
        for i in range(8):
            latest = await self.service.get_session(
                app_name=self.app, user_id="u", session_id=session.id
            )
            assert latest is not None
            copies = [latest.model_copy(deep=True) for _ in writers]
            results = await asyncio.gather(
                *(
                    writer.append_event(copy, event(actions=delta(**{f"sk{i}-{w}": w})))
                    for w, (writer, copy) in enumerate(zip(writers, copies))
                ),
                return_exceptions=True,
            )
            errors = [r for r in results if isinstance(r, BaseException)]
            self.assertEqual(len(errors), 1, results)
            self.assertIsInstance(errors[0], ValueError)
            self.assertIn("modified in storage", str(errors[0]))
        final = await self.service.get_session(
            app_name=self.app, user_id="u", session_id=session.id
        )
        assert final is not None
        self.assertEqual(len(final.events), 8)
        for i in range(8):
            self.assertEqual(len([k for k in final.state if k.startswith(f"sk{i}-")]), 1)
        # Each stored event's delta is the one the state shows: none lost, none reordered.
        replayed: dict[str, Any] = {}
        for stored in final.events:
            replayed.update(stored.actions.state_delta)
        self.assertEqual(replayed, final.state)

    async def test_a_session_without_a_marker_that_is_current_can_append(self) -> None:
        session = await self.service.create_session(app_name=self.app, user_id="u")
        await self.service.append_event(session, event(invocation_id="inv1"))
        session._storage_update_marker = None
        await self.service.append_event(session, event(invocation_id="inv2"))
        got = await self.service.get_session(app_name=self.app, user_id="u", session_id=session.id)
        assert got is not None
        self.assertEqual([e.invocation_id for e in got.events], ["inv1", "inv2"])
        stale = got.model_copy(deep=True)
        await self.service.append_event(got, event())
        stale._storage_update_marker = None
        with self.assertRaisesRegex(ValueError, "modified in storage"):
            await self.service.append_event(stale, event())

    async def test_app_and_user_state_from_concurrent_sessions_are_all_kept(self) -> None:
        sessions = [
            await self.service.create_session(app_name=self.app, user_id="u", session_id=f"s{n}")
            for n in range(6)
        ]
        writers = [self.service, self.fresh_service()]
        await asyncio.gather(
            *(
                writers[n % 2].append_event(
                    session, event(actions=delta(**{f"app:k{n}": n, f"user:k{n}": n}))
                )
                for n, session in enumerate(sessions)
            )
        )
        expected = {f"k{n}": n for n in range(6)}
        got = await self.service.get_session(app_name=self.app, user_id="u", session_id="s0")
        assert got is not None
        self.assertEqual(
            got.state, {**with_prefix("app", **expected), **with_prefix("user", **expected)}
        )


class Names(ServiceTestCase):
    async def test_odd_and_long_names_are_kept_apart(self) -> None:
        app = self.app + " ~@ é/∆"
        names = [
            ("alice", "s"),
            ("al@ice", "s"),
            ("al~40ice", "s"),
            ("", "s"),
            ("user with spaces", "a" * 150),
            ("u" * 300, "x"),
            ("u" * 300, "y"),
        ]
        for user_id, session_id in names:
            await self.service.create_session(
                app_name=app, user_id=user_id, session_id=session_id, state={"who": user_id}
            )
        for user_id, session_id in names:
            got = await self.service.get_session(
                app_name=app, user_id=user_id, session_id=session_id
            )
            assert got is not None
            self.assertEqual((got.app_name, got.user_id, got.id), (app, user_id, session_id))
            self.assertEqual(got.state, {"who": user_id})
            storage_id = self.service.storage_id(app, user_id, session_id)
            self.assertLessEqual(len(storage_id), 200)
        listed = (await self.service.list_sessions(app_name=app)).sessions
        self.assertEqual(sorted((s.user_id, s.id) for s in listed), sorted(names))
        long_user = await self.service.list_sessions(app_name=app, user_id="u" * 300)
        self.assertEqual(sorted(s.id for s in long_user.sessions), ["x", "y"])

    async def test_services_with_other_prefixes_do_not_meet(self) -> None:
        other = SessionStoreSessionService(client=self.client, id_prefix="other-adk:")
        await self.service.create_session(app_name=self.app, user_id="u", session_id="s")
        self.assertIsNone(await other.get_session(app_name=self.app, user_id="u", session_id="s"))
        self.assertEqual((await other.list_sessions(app_name=self.app)).sessions, [])
        with self.assertRaisesRegex(ValueError, "id_prefix"):
            SessionStoreSessionService(client=self.client, id_prefix=".hidden")


class ScriptedModel(BaseLlm):
    """A model that answers each request with the next of its scripted responses, and keeps the
    requests (what the Runner sent it from the session)."""

    model: str = "scripted"
    script: list[LlmResponse]
    requests: list[LlmRequest] = []

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        self.requests.append(llm_request)
        yield self.script[len(self.requests) - 1]


def reply(text: str) -> LlmResponse:
    return LlmResponse(content=types.Content(role="model", parts=[types.Part(text=text)]))


def call(name: str, **args: Any) -> LlmResponse:
    part = types.Part(function_call=types.FunctionCall(name=name, args=args))
    return LlmResponse(content=types.Content(role="model", parts=[part]))


def user_says(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


def get_weather(city: str, tool_context: ToolContext) -> dict[str, str]:
    """The weather in a city."""
    tool_context.state["user:last_city"] = city
    tool_context.state["temp:scratch"] = "not kept"
    return {"city": city, "forecast": "sunny"}


class RunnerRuns(ServiceTestCase):
    async def test_a_runners_turns_are_read_back_by_a_new_service(self) -> None:
        model = ScriptedModel(
            script=[
                call("get_weather", city="Paris"),
                reply("Sunny in Paris."),
                reply("You asked about Paris."),
            ],
            requests=[],
        )
        agent = LlmAgent(
            name="weather", model=model, tools=[get_weather], output_key="last_reply"
        )
        runner = Runner(agent=agent, app_name=self.app, session_service=self.service)
        session = await self.service.create_session(
            app_name=self.app, user_id="u", state={"app:units": "metric"}
        )
        produced = []
        for text in ("Weather in Paris?", "What did I ask?"):
            async for produced_event in runner.run_async(
                user_id="u", session_id=session.id, new_message=user_says(text)
            ):
                produced.append(produced_event)

        got = await self.fresh_service().get_session(
            app_name=self.app, user_id="u", session_id=session.id
        )
        assert got is not None
        # The user's two messages, the call, its response, and two replies; the Runner's own
        # events equal to what it yielded.
        self.assertEqual(len(got.events), 6)
        self.assertEqual(got.events[1:4] + got.events[5:], produced)
        self.assertEqual(got.events[0].content, user_says("Weather in Paris?"))
        self.assertEqual(got.events[1].get_function_calls()[0].args, {"city": "Paris"})
        self.assertEqual(
            got.events[2].get_function_responses()[0].response,
            {"city": "Paris", "forecast": "sunny"},
        )
        self.assertEqual(
            got.state,
            {
                "app:units": "metric",
                "user:last_city": "Paris",
                "last_reply": "You asked about Paris.",
            },
        )
        # The second turn's request carried the first turn's history from the store.
        history = [c.parts[0].text for c in model.requests[2].contents if c.parts[0].text]
        self.assertEqual(
            history, ["Weather in Paris?", "Sunny in Paris.", "What did I ask?"]
        )
        # And a new Runner on the new service goes on with the same session.
        again = Runner(
            agent=LlmAgent(
                name="weather",
                model=ScriptedModel(script=[reply("Still sunny.")], requests=[]),
                output_key="last_reply",
            ),
            app_name=self.app,
            session_service=self.fresh_service(),
        )
        async for _ in again.run_async(
            user_id="u", session_id=session.id, new_message=user_says("And now?")
        ):
            pass
        final = await self.service.get_session(
            app_name=self.app, user_id="u", session_id=session.id
        )
        assert final is not None
        self.assertEqual(len(final.events), 8)
        self.assertEqual(final.state["last_reply"], "Still sunny.")


if __name__ == "__main__":
    unittest.main(verbosity=2)
