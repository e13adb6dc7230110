"""An example agent: it resumes its session from sessionstore, takes a turn (a stand-in for an LLM
call) and records the turn with optimistic concurrency, so that two copies of the agent on one
session never interleave their turns.

    python examples/agent.py --session demo "What is the capital of France?"

The server is --address, else $SESSIONSTORE_ADDRESS, else 127.0.0.1:50051.
"""

import argparse
import os

import grpc

from sessionstore import SessionStoreClient, SessionStoreError


def think(history: list, prompt: str) -> str:
    """Stands in for an LLM call."""
    return f"(turn {len(history) // 2 + 1}) You said: {prompt!r}"


def main() -> None:
    # The whole docstring, as written: its first line alone stops mid-sentence.
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--address",
        default=os.environ.get("SESSIONSTORE_ADDRESS", "127.0.0.1:50051"),
        help="the server, host:port (default: %(default)s)",
    )
    parser.add_argument(
        "--session",
        default="python-agent-demo",
        help="the session to resume (default: %(default)s)",
    )
    parser.add_argument(
        "prompt", nargs="*", default=["Hello!"], help='what the user says (default: "Hello!")'
    )
    args = parser.parse_args()
    prompt = " ".join(args.prompt)

    with SessionStoreClient(args.address, timeout=30) as store:
        while True:
            # Resume: the history so far; its length is the seq our turn must start at.
            history = store.load(args.session)
            turn = [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": think(history, prompt)},
            ]
            try:
                ack = store.append(args.session, turn, expected_seq=len(history))
            except SessionStoreError as error:
                if error.code == grpc.StatusCode.ABORTED:
                    continue  # another agent appended first: reload and take the turn again
                raise
            print(f"session {args.session}: turn stored at seqs {ack.first_seq}-{ack.next_seq - 1}")
            break

        first_seq = max(ack.next_seq - 4, 0)
        for seq, message in enumerate(store.last(args.session, 4), start=first_seq):
            print(f"{seq:3} {message['role']:9} {message['content']}")


if __name__ == "__main__":
    main()
