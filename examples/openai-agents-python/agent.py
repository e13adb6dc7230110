"""An OpenAI Agents SDK agent whose conversation is kept in sessionstore.

A calculator assistant answers two questions, each with a call of its calculate tool, in a
session on the server (SessionStoreSession). Then a new process resumes the conversation from the
server and asks about it, and this one undoes that last turn (pop_item), as an agent's "undo"
would. The model is the offline stand-in of scripted_model.py, unless OPENAI_API_KEY is set: then
the SDK's default OpenAI model answers.

    .tools/venv-openai-agents/bin/python examples/openai-agents-python/agent.py
        [--session ID] [--keep]

The server is $SESSIONSTORE_ADDRESS, else 127.0.0.1:50051 (where `npm start` serves).
"""

from __future__ import annotations

import argparse
import asyncio
import operator
import os
import subprocess
import sys
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from agents import Agent, Runner, function_tool, set_tracing_disabled
from sessionstore import SessionStoreError
from sessionstore.integrations.openai_agents import SessionStoreSession

from scripted_model import ScriptedCalculatorModel, text_of  # beside this file

OPERATIONS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
QUESTIONS = ["What is 12 * 34?", "And 408 + 1?"]
RECAP = "Which questions did I ask?"


@function_tool
def calculate(a: float, op: Literal["+", "-", "*", "/"], b: float) -> str:
    """Computes `a op b`, for op one of + - * /."""
    if op == "/" and b == 0:
        return "error: division by zero"
    value = OPERATIONS[op](a, b)
    return str(int(value)) if float(value).is_integer() else str(value)


def make_agent() -> Agent[Any]:
    real = bool(os.environ.get("OPENAI_API_KEY"))
    if not real:
        set_tracing_disabled(True)  # no key: nowhere to send traces
    return Agent(
        name="Calculator",
        instructions="Use the calculate tool for arithmetic. Answer in one short sentence.",
        tools=[calculate],
        # None is the SDK's default model (OpenAI's, with OPENAI_API_KEY).
        model=None if real else ScriptedCalculatorModel(),
    )


def describe(item: Mapping[str, Any]) -> str:
    """One line for a session item (a message, a tool call or a tool result)."""
    if item.get("type") == "function_call":
        return f"tool call: {item['name']}({item['arguments']})"
    if item.get("type") == "function_call_output":
        return f"tool result: {item['output']}"
    return f"{item.get('role')}: {text_of(item)}"


async def turn(agent: Agent[Any], session: SessionStoreSession, question: str) -> None:
    """One turn: the Runner loads the history from the session, runs the agent (the model, and
    the tool when the model calls it) and appends the turn's items to the session."""
    print(f"user: {question}")
    result = await Runner.run(agent, question, session=session)
    for item in result.new_items:
        print(f"  {describe(item.to_input_item())}")


async def converse(session: SessionStoreSession) -> None:
    agent = make_agent()
    for question in QUESTIONS:
        await turn(agent, session, question)


async def resume(session: SessionStoreSession) -> None:
    """What the new process does: it knows only the session id; the history is the server's."""
    items = await session.get_items()
    print(f"[new process] resumed {len(items)} items from the server:")
    for item in items:
        print(f"  {describe(item)}")
    await turn(make_agent(), session, RECAP)


async def undo(session: SessionStoreSession) -> None:
    """Undoes the last turn: pops items up to and including its user message."""
    while (item := await session.pop_item()) is not None:
        print(f"undo: removed {describe(item)}")
        if item.get("role") == "user":
            break
    items = await session.get_items()
    print(f"the session holds {len(items)} items; the last: {describe(items[-1])}")


async def main() -> None:
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
    session_id = args.session or f"example-openai-agents-py-{uuid.uuid4().hex[:8]}"

    async with SessionStoreSession(session_id, address=address) as session:
        if args.resume:
            await resume(session)
            return
        print(f"session {session_id} on {address}")
        await converse(session)
        # A new process, as after a restart or on another machine: the same session id resumes
        # the conversation.
        sys.stdout.flush()  # what this process printed first comes first
        subprocess.run(
            [sys.executable, __file__, "--session", session_id, "--resume"], check=True
        )
        await undo(session)
        if args.keep:
            print(f"kept {session_id}")
        else:
            await session.clear_session()
            print(f"deleted {session_id}")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except SessionStoreError as error:
        sys.exit(f"sessionstore: {error} (is a server running? `npm start` starts one)")
    except subprocess.CalledProcessError as error:
        sys.exit(f"the resuming process failed with exit code {error.returncode}")
