"""A LangChain agent whose conversation is kept in sessionstore.

A calculator assistant answers two questions, each with a call of its calculate tool, through
RunnableWithMessageHistory over a SessionStoreChatMessageHistory: every message of every turn is
appended to a session on the server. Then a new process resumes the conversation from the server
and asks about it, and this one undoes that last turn (a Rewind of the session). The model is
langchain-core's scripted GenericFakeChatModel, unless OPENAI_API_KEY is set and langchain-openai
is installed: then OpenAI's model answers ($OPENAI_MODEL, default gpt-4o-mini).

    .tools/venv/bin/python examples/langchain-python/agent.py [--session ID] [--keep]

The server is $SESSIONSTORE_ADDRESS, else 127.0.0.1:50051 (where `npm start` serves).
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import subprocess
import sys
import uuid
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, messages_from_dict
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_core.tools import tool
from sessionstore import SessionStoreClient, SessionStoreError
from sessionstore.integrations.langchain import SessionStoreChatMessageHistory

OPERATIONS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
QUESTIONS = ["What is 12 * 34?", "And 408 + 1?"]
RECAP = "Which questions did I ask?"


@tool
def calculate(a: float, op: Literal["+", "-", "*", "/"], b: float) -> str:
    """Computes `a op b`, for op one of + - * /."""
    if op == "/" and b == 0:
        return "error: division by zero"
    value = OPERATIONS[op](a, b)
    return str(int(value)) if float(value).is_integer() else str(value)


def call(call_id: str, a: int, op: str, b: int) -> AIMessage:
    """A reply that calls the calculate tool."""
    args = {"a": a, "op": op, "b": b}
    return AIMessage("", tool_calls=[{"name": "calculate", "args": args, "id": call_id}])


#: What the scripted model answers to the two questions, in order.
SCRIPT = [
    call("call_1", 12, "*", 34),
    AIMessage("12 * 34 = 408."),
    call("call_2", 408, "+", 1),
    AIMessage("408 + 1 = 409."),
]


def make_model(script: list[AIMessage]) -> Runnable[Any, BaseMessage]:
    """The scripted model, or OpenAI's when OPENAI_API_KEY is set and langchain-openai installed;
    any other chat model that can bind tools takes its place the same way."""
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from langchain_openai import ChatOpenAI  # type: ignore[import-not-found]
        except ImportError:
            print(
                "OPENAI_API_KEY is set but langchain-openai is not installed "
                "(pip install langchain-openai): the scripted model answers",
                file=sys.stderr,
            )
        else:
            chat: BaseChatModel = ChatOpenAI(model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
            return chat.bind_tools([calculate])
    return GenericFakeChatModel(messages=iter(script))


def describe(message: BaseMessage) -> list[str]:
    """Lines for a message: its tool calls, a tool's result, or the text of a reply."""
    if isinstance(message, AIMessage) and message.tool_calls:
        return [
            f"tool call: {c['name']}({json.dumps(c['args'], separators=(',', ':'))})"
            for c in message.tool_calls
        ]
    who = {"human": "user", "ai": "assistant", "tool": "tool result"}.get(message.type)
    return [f"{who or message.type}: {message.content}"]


class Conversation:
    """The model, run with the history of one session: each invoke loads the session's messages,
    gives them to the model with the new input, and appends the input and the reply."""

    def __init__(self, store: SessionStoreClient, session_id: str, script: list[AIMessage]):
        self.history = SessionStoreChatMessageHistory(session_id=session_id, client=store)
        self.chain = RunnableWithMessageHistory(make_model(script), lambda _: self.history)
        self.config: RunnableConfig = {"configurable": {"session_id": session_id}}

    def turn(self, question: str) -> None:
        """A question, then the tool calls the model asks for, until it answers."""
        print(f"user: {question}")
        reply = self.chain.invoke(question, self.config)
        while isinstance(reply, AIMessage) and reply.tool_calls:
            results = [calculate.invoke(tool_call) for tool_call in reply.tool_calls]
            for message in [reply, *results]:
                for line in describe(message):
                    print(f"  {line}")
            reply = self.chain.invoke(results, self.config)
        for line in describe(reply):
            print(f"  {line}")


def resume(store: SessionStoreClient, session_id: str) -> None:
    """What the new process does: it knows only the session id; the history is the server's."""
    history = SessionStoreChatMessageHistory(session_id=session_id, client=store).messages
    print(f"[new process] resumed {len(history)} messages from the server:")
    for message in history:
        for line in describe(message):
            print(f"  {line}")
    # The scripted model's one answer, written from the history the server gave back.
    asked = [f'"{message.content}"' for message in history if message.type == "human"]
    Conversation(store, session_id, [AIMessage(f"You asked: {'; '.join(asked)}.")]).turn(RECAP)


def undo(store: SessionStoreClient, session_id: str) -> None:
    """Undoes the last turn: rewinds the session to its last user message, on the condition that
    nothing was appended since it was read (expected_seq)."""
    history = SessionStoreChatMessageHistory(session_id=session_id, client=store).messages
    last_question = max(n for n, message in enumerate(history) if message.type == "human")
    rewound = store.rewind(session_id, last_question, expected_seq=len(history))
    for message in reversed(messages_from_dict(rewound.dropped)):
        for line in describe(message):
            print(f"undo: removed {line}")
    kept = history[:last_question]
    print(f"the session holds {len(kept)} messages; the last: {describe(kept[-1])[-1]}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--session", help="the session id (default: a new one)")
    parser.add_argument("--keep", action="store_true", help="keep the session at the end")
    parser.add_argument(
        "--resume", action="store_true", help="only resume the session and ask about it"
    )
    args = parser.parse_args()
    address = os.environ.get("SESSIONSTORE_ADDRESS", "127.0.0.1:50051")
    session_id = args.session or f"example-langchain-py-{uuid.uuid4().hex[:8]}"

    # One client (one connection) for every history of this process.
    with SessionStoreClient(address) as store:
        if args.resume:
            resume(store, session_id)
            return
        print(f"session {session_id} on {address}")
        conversation = Conversation(store, session_id, SCRIPT)
        for question in QUESTIONS:
            conversation.turn(question)
        # A new process, as after a restart or on another machine: the same session id resumes
        # the conversation.
        sys.stdout.flush()  # what this process printed first comes first
        subprocess.run(
            [sys.executable, __file__, "--session", session_id, "--resume"], check=True
        )
        undo(store, session_id)
        if args.keep:
            print(f"kept {session_id}")
        else:
            store.delete(session_id)
            print(f"deleted {session_id}")


if __name__ == "__main__":
    try:
        main()
    except SessionStoreError as error:
        sys.exit(f"sessionstore: {error} (is a server running? `npm start` starts one)")
    except subprocess.CalledProcessError as error:
        sys.exit(f"the resuming process failed with exit code {error.returncode}")
