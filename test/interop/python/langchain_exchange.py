"""The Python half of test/interop/langchain-js.test.ts: LangChain histories across languages.

``python langchain_exchange.py write SESSION`` stores langchain_history.ASSORTED in SESSION through
SessionStoreChatMessageHistory (in two add_messages calls), for the TypeScript history to read.
``python langchain_exchange.py check SESSION [EXTRA]`` reads SESSION through it and exits 0 only if
the messages are ASSORTED (the TypeScript history wrote the same messages), followed by EXTRA, a
JSON list of ``message_to_dict`` forms; it prints what it read as ``message_to_dict`` JSON.
SESSIONSTORE_ADDRESS names the server (langchain_history reads it, and SESSIONSTORE_PREFIX).
"""

from __future__ import annotations

import json
import sys

from langchain_core.messages import messages_from_dict, message_to_dict
from langchain_history import ADDRESS, ASSORTED

from sessionstore.integrations.langchain import SessionStoreChatMessageHistory


def main(mode: str, session_id: str, extra: str = "[]") -> int:
    with SessionStoreChatMessageHistory(session_id=session_id, address=ADDRESS) as history:
        if mode == "write":
            history.add_messages(ASSORTED[:3])
            history.add_messages(ASSORTED[3:])
            return 0
        read = history.messages
    print(json.dumps([message_to_dict(message) for message in read], ensure_ascii=False))
    expected = ASSORTED + messages_from_dict(json.loads(extra))
    if read == expected:
        return 0
    for n, (got, want) in enumerate(zip(read, expected, strict=False)):
        if got != want:
            # Field names only: which field of which message differs.
            fields = sorted(
                key
                for key in set(got.model_fields_set) | set(want.model_fields_set)
                if getattr(got, key, None) != getattr(want, key, None)
            )
            print(f"message {n}: {type(got).__name__} != {type(want).__name__}", fields,
                  file=sys.stderr)
    print(f"read {len(read)} messages, expected {len(expected)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
