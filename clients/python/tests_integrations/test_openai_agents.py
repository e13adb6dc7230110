"""SessionStoreSession (sessionstore.integrations.openai_agents) against a real sessionstore server,
with the real OpenAI Agents SDK and its scripted model (agents.testing.ScriptedModel): no network
but the server's. test/interop/openai-agents.test.ts starts the server and runs this file with the
Python of .tools/venv-openai-agents; by hand:

    SESSIONSTORE_ADDRESS=127.0.0.1:50051 python clients/python/tests_integrations/test_openai_agents.py

The SDK ships no session test suite for other backends (its tests/memory/test_session.py tests
SQLiteSession itself), so the behaviours its tests show for SQLiteSession are checked here against
ours: direct calls, limits and session settings, pop order, isolation of sessions, and Runner
runs over several turns.
"""

from __future__ import annotations

import asyncio
import json
import os
import unittest
import uuid
from typing import Any

import grpc
from agents import (
    Agent,
    RunConfig,
    Runner,
    SessionSettings,
    function_tool,
    set_tracing_disabled,
)
from agents.memory import Session
from agents.testing import ScriptedModel, assistant_message, function_call

from sessionstore import SessionStoreError
from sessionstore.aio import AsyncSessionStoreClient
from sessionstore.integrations.openai_agents import SessionStoreSession

ADDRESS = os.environ["SESSIONSTORE_ADDRESS"]

# Traces would go to OpenAI's servers: none in tests.
set_tracing_disabled(True)


def new_session_id(name: str) -> str:
    """A session id no other test (nor an earlier run on the same server) uses."""
    return f"oai-{name}-{uuid.uuid4().hex[:12]}"


def texts(count: int) -> list[dict[str, Any]]:
    return [
        {"role": "user" if n % 2 == 0 else "assistant", "content": f"Message {n}"}
        for n in range(count)
    ]


class SessionStoreTestCase(unittest.IsolatedAsyncioTestCase):
    """Gives each test a client of the server, closed after it."""

    async def asyncSetUp(self) -> None:
        # On the test's event loop, as the adapter's client is.
        self.store = AsyncSessionStoreClient(ADDRESS, timeout=30)
        self.addAsyncCleanup(self.store.close)

    def session(self, name: str, **options: Any) -> SessionStoreSession:
        session = SessionStoreSession(new_session_id(name), client=self.store, **options)
        self.addAsyncCleanup(session.close)
        return session


class Protocol(SessionStoreTestCase):
    def test_is_an_agents_session(self) -> None:
        self.assertIsInstance(self.session("protocol"), Session)

    def test_default_session_settings_have_no_limit(self) -> None:
        settings = self.session("settings").session_settings
        self.assertIsInstance(settings, SessionSettings)
        assert settings is not None
        self.assertIsNone(settings.limit)

    def test_address_or_client_not_both(self) -> None:
        with self.assertRaisesRegex(ValueError, "address or client"):
            SessionStoreSession("x", address=ADDRESS, client=self.store)

    async def test_connects_to_an_address_and_closes_its_own_client(self) -> None:
        async with SessionStoreSession(new_session_id("address"), address=ADDRESS) as session:
            await session.add_items([{"role": "user", "content": "hi"}])
            self.assertEqual(await session.get_items(), [{"role": "user", "content": "hi"}])
            own = session.client
        # Closed: its channel refuses calls (the client is the asyncio one, no threads).
        self.assertIsInstance(own, AsyncSessionStoreClient)
        with self.assertRaises(Exception):
            await own.load(session.session_id)

    async def test_close_leaves_a_given_client_open(self) -> None:
        session = self.session("given")
        await session.close()
        await session.add_items([{"role": "user", "content": "still open"}])
        self.assertEqual(len(await session.get_items()), 1)

    async def test_a_bad_session_id_is_invalid_argument(self) -> None:
        session = SessionStoreSession("no spaces allowed", client=self.store)
        with self.assertRaises(SessionStoreError) as raised:
            await session.add_items([{"role": "user", "content": "hi"}])
        self.assertEqual(raised.exception.code, grpc.StatusCode.INVALID_ARGUMENT)


class MadeBeforeTheLoop(unittest.TestCase):
    def test_a_session_made_before_the_event_loop_runs_its_client_on_that_loop(self) -> None:
        """As the SDK's examples make a session, then asyncio.run the Runner: the session's own
        client is made on first use, on the loop that uses it."""
        session = SessionStoreSession(new_session_id("early"), address=ADDRESS)

        async def use() -> list[Any]:
            async with session:
                await session.add_items([{"role": "user", "content": "early"}])
                return await session.get_items()

        self.assertEqual(asyncio.run(use()), [{"role": "user", "content": "early"}])

    def test_a_session_used_from_one_event_loop_then_another(self) -> None:
        session = SessionStoreSession(new_session_id("loops"), address=ADDRESS)

        async def add(text: str, *, then_close: bool = False) -> list[Any]:
            await session.add_items([{"role": "user", "content": text}])
            items = await session.get_items()
            if then_close:
                await session.close()
            return items

        self.assertEqual(len(asyncio.run(add("one"))), 1)
        self.assertEqual(len(asyncio.run(add("two", then_close=True))), 2)


class Items(SessionStoreTestCase):
    async def test_an_unknown_session_has_no_items(self) -> None:
        session = self.session("unknown")
        self.assertEqual(await session.get_items(), [])
        self.assertEqual(await session.get_items(limit=3), [])

    async def test_items_are_stored_one_message_each_as_compact_json(self) -> None:
        session = self.session("stored")
        items = [
            {"role": "user", "content": "héllo, 世界 🌍 \"quoted\" \\ back"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a":1}'},
            {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
        ]
        await session.add_items(items)
        await session.add_items([])  # nothing, and no call
        self.assertEqual(await session.get_items(), items)
        self.assertEqual(
            await self.store.load(session.session_id, raw=True),
            [json.dumps(item, ensure_ascii=False, separators=(",", ":")) for item in items],
        )

    async def test_one_add_is_all_or_nothing(self) -> None:
        session = self.session("atomic-add")
        await session.add_items(texts(1))
        with self.assertRaises(SessionStoreError) as raised:  # an array is no item
            await session.add_items([{"role": "user", "content": "fine"}, "[1, 2]"])
        self.assertEqual(raised.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(await session.get_items(), texts(1))

    async def test_limit_returns_the_latest_in_order(self) -> None:
        session = self.session("limit")
        await session.add_items(texts(6))
        self.assertEqual(await session.get_items(), texts(6))
        self.assertEqual(await session.get_items(limit=2), texts(6)[4:])
        self.assertEqual(await session.get_items(limit=4), texts(6)[2:])
        self.assertEqual(await session.get_items(limit=10), texts(6))
        self.assertEqual(await session.get_items(limit=0), [])
        with self.assertRaisesRegex(ValueError, "at least 0"):
            await session.get_items(limit=-1)

    async def test_session_settings_limit_is_the_default_and_an_explicit_limit_wins(self) -> None:
        session = self.session("settings-limit", session_settings=SessionSettings(limit=3))
        await session.add_items(texts(10))
        self.assertEqual(await session.get_items(), texts(10)[7:])
        self.assertEqual(await session.get_items(limit=2), texts(10)[8:])

    async def test_sessions_are_separate(self) -> None:
        first, second = self.session("first"), self.session("second")
        only = [{"role": "user", "content": "Session 1 message"}]
        await first.add_items(only)
        await second.add_items(texts(2))
        self.assertEqual((await second.pop_item() or {}).get("content"), "Message 1")
        self.assertEqual(await first.get_items(), only)
        self.assertEqual(await second.get_items(), texts(1))

    async def test_another_session_object_sees_the_same_items(self) -> None:
        session = self.session("shared")
        await session.add_items(texts(3))
        async with SessionStoreSession(session.session_id, address=ADDRESS) as again:
            self.assertEqual(await again.get_items(), texts(3))


class PopItem(SessionStoreTestCase):
    async def test_pops_latest_first_then_none(self) -> None:
        session = self.session("pop")
        self.assertIsNone(await session.pop_item())  # unknown session
        await session.add_items(texts(3))
        for n in (2, 1, 0):
            self.assertEqual(await session.pop_item(), texts(3)[n])
            self.assertEqual(await session.get_items(), texts(3)[:n])
        self.assertIsNone(await session.pop_item())  # the session exists, empty
        await session.add_items(texts(1))  # and takes items again
        self.assertEqual(await session.get_items(), texts(1))

    async def test_a_session_trimmed_to_nothing_pops_none(self) -> None:
        session = self.session("trimmed")
        await session.add_items(texts(2))
        await self.store.trim(session.session_id, 2)
        self.assertIsNone(await session.pop_item())
        self.assertEqual(await session.get_items(), [])

    async def test_an_append_in_between_is_popped_not_dropped(self) -> None:
        """The length pop_item reads goes stale before its rewind: the conditional rewind is
        refused (ABORTED), and it pops again at the new length, returning the new latest item."""
        session_id = new_session_id("raced")
        store = self.store

        class AppendsAfterMeta(AsyncSessionStoreClient):
            async def meta(self, session_id: str) -> Any:
                meta = await super().meta(session_id)
                await store.append(session_id, [{"role": "user", "content": "in between"}])
                return meta

        raced = AppendsAfterMeta(ADDRESS)
        self.addAsyncCleanup(raced.close)
        session = SessionStoreSession(session_id, client=raced)
        await session.add_items(texts(2))
        self.assertEqual(await session.pop_item(), {"role": "user", "content": "in between"})
        self.assertEqual(await session.get_items(), texts(2))

    async def test_concurrent_pops_each_take_a_different_item(self) -> None:
        session_id = new_session_id("concurrent")
        items = texts(8)
        await self.store.append(session_id, items)
        # Separate clients (connections), as separate processes would be.
        sessions = [SessionStoreSession(session_id, address=ADDRESS) for _ in range(10)]
        for session in sessions:
            self.addAsyncCleanup(session.close)
        popped = await asyncio.gather(*(session.pop_item() for session in sessions))
        taken = [item for item in popped if item is not None]
        self.assertEqual(popped.count(None), 2)
        self.assertCountEqual(taken, items)
        self.assertEqual(await self.store.load(session_id), [])


class ClearSession(SessionStoreTestCase):
    async def test_deletes_the_session(self) -> None:
        session = self.session("clear")
        await session.add_items(texts(2))
        await session.clear_session()
        self.assertEqual(await session.get_items(), [])
        self.assertIsNone(await self.store.meta(session.session_id))
        await session.clear_session()  # an unknown session: nothing to do
        await session.add_items(texts(1))  # it starts again, at seq 0
        stored = [pair async for pair in self.store.messages(session.session_id)]
        self.assertEqual(stored, [(0, texts(1)[0])])


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def weather_agent(model: ScriptedModel) -> Agent:
    return Agent(name="weather", instructions="Answer briefly.", model=model, tools=[get_weather])


class RunnerRuns(SessionStoreTestCase):
    async def test_several_turns_with_a_tool_call_are_recorded_and_resumed(self) -> None:
        session = self.session("runner")
        model = ScriptedModel(
            [
                [function_call("get_weather", {"city": "Paris"}, call_id="call_1")],
                [assistant_message("It is sunny in Paris.", item_id="msg_1")],
                [assistant_message("You asked about Paris.", item_id="msg_2")],
            ]
        )
        agent = weather_agent(model)

        first = await Runner.run(agent, "What is the weather in Paris?", session=session)
        self.assertEqual(first.final_output, "It is sunny in Paris.")
        stored = await session.get_items()
        self.assertEqual(
            [(item.get("type"), item.get("role")) for item in stored],
            [
                (None, "user"),
                ("function_call", None),
                ("function_call_output", None),
                ("message", "assistant"),
            ],
        )
        self.assertEqual(stored[0]["content"], "What is the weather in Paris?")
        self.assertEqual((stored[1]["call_id"], stored[1]["name"]), ("call_1", "get_weather"))
        self.assertEqual((stored[2]["call_id"], stored[2]["output"]), ("call_1", "Sunny in Paris"))

        # The next turn, by another session object (as another process would), starts from
        # the stored history: the model is given all of it, then the new question.
        async with SessionStoreSession(session.session_id, address=ADDRESS) as resumed:
            second = await Runner.run(agent, "What did I ask about?", session=resumed)
        self.assertEqual(second.final_output, "You asked about Paris.")
        given = model.calls[-1].input
        self.assertEqual(given[:4], stored)
        self.assertEqual(given[4], {"role": "user", "content": "What did I ask about?"})
        history = await session.get_items()
        self.assertEqual(len(history), 6)
        self.assertEqual(history[:4], stored)
        self.assertEqual(history[5]["content"][0]["text"], "You asked about Paris.")
        model.assert_complete()

    async def test_a_streamed_run_is_recorded_too(self) -> None:
        session = self.session("streamed")
        model = ScriptedModel(
            [
                [function_call("get_weather", {"city": "Oslo"}, call_id="call_9")],
                [assistant_message("Sunny in Oslo.")],
            ]
        )
        result = Runner.run_streamed(weather_agent(model), "Weather in Oslo?", session=session)
        async for _ in result.stream_events():
            pass
        self.assertEqual(result.final_output, "Sunny in Oslo.")
        self.assertEqual(len(await session.get_items()), 4)

    async def test_undoing_a_turn_with_pop_item_then_asking_again(self) -> None:
        """The SDK's documented correction pattern: pop the reply and the question, ask again."""
        session = self.session("undo")
        model = ScriptedModel([[assistant_message("Four.")], [assistant_message("Paris.")]])
        agent = Agent(name="plain", model=model)
        await Runner.run(agent, "2 + 2?", session=session)
        reply, question = await session.pop_item(), await session.pop_item()
        self.assertEqual((question or {}).get("content"), "2 + 2?")
        self.assertEqual((reply or {}).get("role"), "assistant")
        self.assertEqual(await session.get_items(), [])
        await Runner.run(agent, "Capital of France?", session=session)
        self.assertEqual(model.calls[-1].input, [{"role": "user", "content": "Capital of France?"}])
        self.assertEqual(len(await session.get_items()), 2)

    async def test_run_config_session_settings_limit_what_the_model_is_given(self) -> None:
        session = self.session("run-limit", session_settings=SessionSettings(limit=100))
        await session.add_items([{"role": "user", "content": f"Turn {n}"} for n in range(10)])
        model = ScriptedModel([[assistant_message("Got it")]])
        await Runner.run(
            Agent(name="plain", model=model),
            "New question",
            session=session,
            run_config=RunConfig(session_settings=SessionSettings(limit=2)),
        )
        self.assertEqual(
            [item.get("content") for item in model.calls[-1].input],
            ["Turn 8", "Turn 9", "New question"],
        )
        self.assertEqual(len(await session.get_items()), 12)


if __name__ == "__main__":
    unittest.main()
