"""An example Google ADK agent whose sessions live in sessionstore.

A weather agent answers two turns (the first calls its tool); a second session service, as
another process would have after a restart, then reads the session back: every event and the
state, the user's ``user:`` state included. Start a server (``npm start`` at the repository root
serves 127.0.0.1:50051; SESSIONSTORE_ADDRESS names another), then run

    .tools/venv-adk/bin/python examples/adk/agent.py [--keep]

The model is a scripted stand-in, so that it runs offline; with GOOGLE_API_KEY set it is Gemini
(GEMINI_MODEL names which; default gemini-2.5-flash). --keep keeps the session afterwards.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.tools.tool_context import ToolContext
from google.genai import types

from sessionstore.integrations.adk import SessionStoreSessionService

APP = "weather-example"
USER = "alice"


def get_weather(city: str, tool_context: ToolContext) -> dict[str, str]:
    """The weather forecast of a city."""
    # Kept for the user across their sessions: the service stores `user:` keys per user.
    tool_context.state["user:last_city"] = city
    return {"city": city, "forecast": "sunny, 24 °C"}


class ScriptedModel(BaseLlm):
    """A stand-in for a model: it calls the tool for the first question, then answers from the
    tool's result and from the conversation the session holds."""

    model: str = "scripted"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        last = llm_request.contents[-1].parts[0]
        if last.function_response is not None:
            forecast = last.function_response.response["forecast"]
            yield text(f"It is {forecast} in Paris.")
        elif len(llm_request.contents) == 1:
            call = types.FunctionCall(name="get_weather", args={"city": "Paris"})
            part = types.Part(function_call=call)
            yield LlmResponse(content=types.Content(role="model", parts=[part]))
        else:
            # The first question, from the history the Runner read from the session.
            yield text(f"You asked: {llm_request.contents[0].parts[0].text}")


def text(reply: str) -> LlmResponse:
    return LlmResponse(content=types.Content(role="model", parts=[types.Part(text=reply)]))


def model() -> Any:
    if os.environ.get("GOOGLE_API_KEY"):
        return os.environ.get("GEMINI_MODEL", "gemini-2.5-flash")
    return ScriptedModel()


def user_says(question: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=question)])


def describe(part: types.Part) -> str:
    if part.function_call is not None:
        return f"calls {part.function_call.name}({part.function_call.args})"
    if part.function_response is not None:
        return f"returns {part.function_response.response}"
    return repr(part.text)


async def main() -> None:
    address = os.environ.get("SESSIONSTORE_ADDRESS", "127.0.0.1:50051")
    agent = LlmAgent(
        name="weather",
        model=model(),
        instruction="Answer weather questions with the get_weather tool; reply briefly.",
        tools=[get_weather],
        output_key="last_reply",  # the agent's last reply, kept in the session's state
    )
    session_id = f"chat-{uuid.uuid4().hex[:8]}"
    async with SessionStoreSessionService(address=address) as service:
        runner = Runner(agent=agent, app_name=APP, session_service=service)
        await service.create_session(
            app_name=APP, user_id=USER, session_id=session_id, state={"app:units": "metric"}
        )
        print(f"session {session_id} on {address}")
        for question in ("What is the weather in Paris?", "What did I ask?"):
            print(f"user: {question}")
            async for event in runner.run_async(
                user_id=USER, session_id=session_id, new_message=user_says(question)
            ):
                if event.is_final_response() and event.content and event.content.parts:
                    print(f"agent: {event.content.parts[0].text}")

    # Another service, with a connection of its own, reads the session back.
    async with SessionStoreSessionService(address=address) as service:
        session = await service.get_session(app_name=APP, user_id=USER, session_id=session_id)
        assert session is not None
        print(f"read back: {len(session.events)} events")
        for event in session.events:
            for part in event.content.parts:
                print(f"  {event.author}: {describe(part)}")
        print(f"state: user:last_city={session.state['user:last_city']}, "
              f"app:units={session.state['app:units']}")
        print(f"stored as {service.storage_id(APP, USER, session_id)}")
        if "--keep" not in sys.argv[1:]:
            await service.delete_session(app_name=APP, user_id=USER, session_id=session_id)


if __name__ == "__main__":
    asyncio.run(main())
