"""A stand-in for an LLM, so that the example runs offline: an OpenAI Agents SDK ``Model`` that
answers from the conversation it is given, by three rules, as a calculator assistant would:

- a question with arithmetic in it ("What is 12 * 34?") gets a call of the ``calculate`` tool;
- a tool result gets an answer that states it ("12 * 34 = 408.");
- any other question gets the list of the questions asked before it, which it can only know from
  the history the session gave it.

It implements the SDK's ``Model`` interface (what ``Agent(model=...)`` takes) for ``Runner.run``;
the SDK's ``agents.testing.ScriptedModel`` builds the same output items from a fixed script.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from agents import ModelResponse, Usage
from agents.models.interface import Model
from agents.testing import assistant_message, function_call

#: "12 * 34", "408 + 1", "-2.5 / 4": two numbers and an operator, as the calculate tool takes them.
ARITHMETIC = re.compile(r"(-?\d+(?:\.\d+)?)\s*([-+*/])\s*(-?\d+(?:\.\d+)?)")


def number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def text_of(item: Mapping[str, Any]) -> str:
    """The text of a message item: a user's string, or the text parts of a reply."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [])


class ScriptedCalculatorModel(Model):
    """The rules of the module's docstring; no network, no randomness."""

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        # The first turn of a new session may come as a plain string.
        items = [{"role": "user", "content": input}] if isinstance(input, str) else input
        return ModelResponse(output=[self.reply(items)], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("the scripted model answers Runner.run, not Runner.run_streamed")

    def reply(self, items: list[dict[str, Any]]) -> Any:
        last = items[-1]
        replies = sum(1 for item in items if item.get("role") == "assistant")
        if last.get("type") == "function_call_output":
            call = next(
                item
                for item in reversed(items)
                if item.get("type") == "function_call" and item["call_id"] == last["call_id"]
            )
            args = json.loads(call["arguments"])
            expression = f"{number(str(args['a']))} {args['op']} {number(str(args['b']))}"
            answer = f"{expression} = {last['output']}."
            return assistant_message(answer, item_id=f"msg_{replies + 1}")
        question = text_of(last)
        arithmetic = ARITHMETIC.search(question)
        if arithmetic:
            a, op, b = arithmetic.groups()
            calls = sum(1 for item in items if item.get("type") == "function_call")
            return function_call(
                "calculate", {"a": number(a), "op": op, "b": number(b)}, call_id=f"call_{calls + 1}"
            )
        earlier = [text_of(item) for item in items[:-1] if item.get("role") == "user"]
        answer = (
            "You asked: " + "; ".join(f'"{text}"' for text in earlier) + "."
            if earlier
            else "This is your first question."
        )
        return assistant_message(answer, item_id=f"msg_{replies + 1}")
