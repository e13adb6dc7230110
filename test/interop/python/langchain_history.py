"""SessionStoreChatMessageHistory against the real server, through langchain-core itself.

Run by test/interop/langchain.test.ts as
``python test/interop/python/langchain_history.py`` with SESSIONSTORE_ADDRESS set to a
fresh server and SESSIONSTORE_PREFIX to a prefix no other test uses. The model is langchain-core's
GenericFakeChatModel: scripted replies, no network.
"""

from __future__ import annotations

import asyncio
import os
import unittest
import warnings
from collections.abc import Iterator

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from sessionstore import SessionStoreClient
from sessionstore.aio import AsyncSessionStoreClient
from sessionstore.integrations.langchain import SessionStoreChatMessageHistory

# langchain-core 1.x deprecates RunnableWithMessageHistory in favour of LangGraph's persistence,
# but still ships it, and it is how a BaseChatMessageHistory is used: this tests it, quietly.
warnings.filterwarnings("ignore", message="RunnableWithMessageHistory is deprecated")

ADDRESS = os.environ["SESSIONSTORE_ADDRESS"]
PREFIX = os.environ["SESSIONSTORE_PREFIX"]

WEATHER_CALL = {"name": "weather", "args": {"city": "Paris"}, "id": "call_1", "type": "tool_call"}

# One of each kind of message, with the fields a round trip could lose.
ASSORTED: list[BaseMessage] = [
    SystemMessage("You are terse.", id="m0"),
    HumanMessage(
        [{"type": "text", "text": "What is this?"},
         {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}],
        name="alice",
        id="m1",
    ),
    AIMessage(
        "",
        id="m2",
        tool_calls=[WEATHER_CALL],
        invalid_tool_calls=[
            {"name": "clock", "args": "{not json", "id": "call_2", "error": "bad",
             "type": "invalid_tool_call"}
        ],
        usage_metadata={"input_tokens": 12, "output_tokens": 3, "total_tokens": 15},
        response_metadata={"model_name": "fake", "finish_reason": "tool_calls"},
        additional_kwargs={"refusal": None},
    ),
    ToolMessage("18°C, ☀", tool_call_id="call_1", artifact={"raw": [18, "C"]}, status="success",
                id="m3"),
    ToolMessage("no such tool", tool_call_id="call_2", status="error", id="m4"),
    ChatMessage(content="noted", role="critic", id="m5"),
    FunctionMessage(content="42", name="answer", id="m6"),
    AIMessageChunk(content="partial", id="m7"),
]


def session(name: str) -> str:
    return f"{PREFIX}-{name}"


class Recorder:
    """What the model was given at each turn (RunnableWithMessageHistory feeds it the history)."""

    def __init__(self) -> None:
        self.inputs: list[list[BaseMessage]] = []

    def __call__(self, messages: list[BaseMessage]) -> list[BaseMessage]:
        self.inputs.append(list(messages))
        return messages


def scripted_model(replies: list[AIMessage]) -> GenericFakeChatModel:
    messages: Iterator[AIMessage | str] = iter(replies)
    return GenericFakeChatModel(messages=messages)


class HistoryRoundTrip(unittest.TestCase):
    def setUp(self) -> None:
        self.store = SessionStoreClient(ADDRESS)
        self.addCleanup(self.store.close)

    def history(self, name: str) -> SessionStoreChatMessageHistory:
        return SessionStoreChatMessageHistory(session_id=session(name), client=self.store)

    def test_every_kind_of_message_comes_back_equal(self) -> None:
        history = self.history("assorted")
        history.add_messages(ASSORTED[:3])
        history.add_message(ASSORTED[3])
        history.add_messages(ASSORTED[4:])
        # A history made afresh reads them from the server.
        self.assertEqual(self.history("assorted").messages, ASSORTED)
        self.assertIsInstance(self.history("assorted").messages[-1], AIMessageChunk)

    def test_messages_are_stored_in_langchains_serialized_form(self) -> None:
        history = self.history("form")
        history.add_messages(ASSORTED[2:4])
        stored = self.store.load(session("form"))
        self.assertEqual(stored, [message_to_dict(m) for m in ASSORTED[2:4]])
        self.assertEqual(stored[0]["type"], "ai")
        self.assertEqual(stored[0]["data"]["tool_calls"], [WEATHER_CALL])

    def test_add_messages_is_one_append(self) -> None:
        history = self.history("one-append")
        history.add_messages([HumanMessage("a"), AIMessage("b"), HumanMessage("c")])
        self.assertEqual(self.store.meta(session("one-append")).message_count, 3)
        self.history("nothing").add_messages([])  # no request, so no empty session either
        self.assertEqual(list(self.store.list(prefix=session("nothing"))), [])

    def test_a_missing_session_is_an_empty_history(self) -> None:
        self.assertEqual(self.history("never-written").messages, [])

    def test_clear_empties_the_history_and_it_can_start_again(self) -> None:
        history = self.history("clear")
        history.add_messages([HumanMessage("one"), AIMessage("two")])
        history.clear()
        self.assertEqual(history.messages, [])
        self.assertEqual(self.store.load(session("clear")), [])
        history.clear()  # clearing an empty history is no error
        history.add_messages([HumanMessage("again")])
        self.assertEqual(history.messages, [HumanMessage("again")])

    def test_histories_of_different_sessions_stay_apart(self) -> None:
        alice, bob = self.history("alice"), self.history("bob")
        alice.add_messages([HumanMessage("I am Alice")])
        bob.add_messages([HumanMessage("I am Bob"), AIMessage("Hi Bob")])
        alice.add_messages([AIMessage("Hi Alice")])
        self.assertEqual(alice.messages, [HumanMessage("I am Alice"), AIMessage("Hi Alice")])
        self.assertEqual(bob.messages, [HumanMessage("I am Bob"), AIMessage("Hi Bob")])
        bob.clear()
        self.assertEqual(bob.messages, [])
        self.assertEqual(len(alice.messages), 2)

    def test_async_variants(self) -> None:
        history = self.history("async")

        async def scenario() -> tuple[list[BaseMessage], list[BaseMessage]]:
            await history.aadd_messages([HumanMessage("async"), AIMessage("yes")])
            added = await history.aget_messages()
            await history.aclear()
            return added, await history.aget_messages()

        added, cleared = asyncio.run(scenario())
        self.assertEqual(added, [HumanMessage("async"), AIMessage("yes")])
        self.assertEqual(cleared, [])

    def test_async_variants_through_the_asyncio_client(self) -> None:
        """With async_client= (and with clients of its own), the async variants are the asyncio
        client's calls on the caller's loop, not the sync client's in an executor."""
        name = session("async-aio")

        async def scenario() -> tuple[list[BaseMessage], list[BaseMessage]]:
            async with AsyncSessionStoreClient(ADDRESS) as aio:
                history = SessionStoreChatMessageHistory(
                    session_id=name, client=self.store, async_client=aio
                )
                await history.aadd_messages([HumanMessage("async"), AIMessage("yes")])
                loaded = [m async for _, m in aio.messages(name)]
                added = messages_from_dict(loaded)
                await history.aclear()
                return added, await history.aget_messages()

        added, cleared = asyncio.run(scenario())
        self.assertEqual(added, [HumanMessage("async"), AIMessage("yes")])
        self.assertEqual(cleared, [])

        async def own(text: str) -> list[BaseMessage]:
            async with SessionStoreChatMessageHistory(session_id=name, address=ADDRESS) as history:
                await history.aadd_messages([HumanMessage(text)])
                return await history.aget_messages()

        # Two event loops in turn: each gets a channel of its own.
        self.assertEqual(asyncio.run(own("one")), [HumanMessage("one")])
        self.assertEqual(asyncio.run(own("two")), [HumanMessage("one"), HumanMessage("two")])


class WithRunnableWithMessageHistory(unittest.TestCase):
    """Several turns of a scripted model, with a tool call and its result, kept by the server."""

    def setUp(self) -> None:
        self.store = SessionStoreClient(ADDRESS)
        self.addCleanup(self.store.close)

    def chain(self, recorder: Recorder, replies: list[AIMessage]) -> RunnableWithMessageHistory:
        # A fresh history object at each turn, as a server process would make one per request.
        return RunnableWithMessageHistory(
            RunnableLambda(recorder) | scripted_model(replies),
            lambda session_id: SessionStoreChatMessageHistory(
                session_id=session_id, client=self.store
            ),
        )

    def test_turns_with_a_tool_call_round_trip(self) -> None:
        call = AIMessage("", tool_calls=[WEATHER_CALL], id="ai-1")
        answer = AIMessage("It is 18°C in Paris.", id="ai-2")
        welcome = AIMessage("You're welcome.", id="ai-3")
        recorder = Recorder()
        hello = AIMessage("Hello!", id="ai-4")
        chain = self.chain(recorder, [call, answer, welcome, hello])
        config: RunnableConfig = {"configurable": {"session_id": session("chain")}}

        question = HumanMessage("Weather in Paris?", id="h-1")
        result = ToolMessage("18°C", tool_call_id="call_1", id="t-1")
        thanks = HumanMessage("Thanks!", id="h-2")
        first = chain.invoke(question, config)
        self.assertEqual(first.tool_calls, [WEATHER_CALL])
        chain.invoke(result, config)
        chain.invoke(thanks, config)

        turns = [question, call, result, answer, thanks, welcome]
        self.assertEqual(recorder.inputs, [turns[:1], turns[:3], turns[:5]])
        history = SessionStoreChatMessageHistory(session_id=session("chain"), address=ADDRESS)
        with history:
            kept = history.messages
        self.assertEqual(kept, turns)
        self.assertIsInstance(kept[1], AIMessage)
        self.assertEqual(getattr(kept[1], "tool_calls", None), [WEATHER_CALL])
        self.assertIsInstance(kept[2], ToolMessage)

        # Another session through the same chain starts with nothing of the first.
        other: RunnableConfig = {"configurable": {"session_id": session("chain-other")}}
        chain.invoke(HumanMessage("Hello?", id="h-3"), other)
        self.assertEqual(recorder.inputs[-1], [HumanMessage("Hello?", id="h-3")])
        self.assertEqual(len(self.store.load(session("chain"))), 6)

    def test_async_turn(self) -> None:
        recorder = Recorder()
        chain = self.chain(recorder, [AIMessage("Async hello.", id="ai-a")])
        config: RunnableConfig = {"configurable": {"session_id": session("chain-async")}}
        reply = asyncio.run(chain.ainvoke(HumanMessage("Hi", id="h-a"), config))
        self.assertEqual(reply.content, "Async hello.")
        history = SessionStoreChatMessageHistory(
            session_id=session("chain-async"), client=self.store
        )
        self.assertEqual(
            history.messages, [HumanMessage("Hi", id="h-a"), AIMessage("Async hello.", id="ai-a")]
        )


class Construction(unittest.TestCase):
    def test_address_and_client_together_are_refused(self) -> None:
        with SessionStoreClient(ADDRESS) as store, self.assertRaises(TypeError):
            SessionStoreChatMessageHistory(session_id="x", address=ADDRESS, client=store)

    def test_a_given_client_stays_open(self) -> None:
        with SessionStoreClient(ADDRESS) as store:
            history = SessionStoreChatMessageHistory(session_id=session("shared"), client=store)
            with history:
                history.add_messages([HumanMessage("kept")])
            self.assertEqual(len(store.load(session("shared"))), 1)


if __name__ == "__main__":
    unittest.main()
