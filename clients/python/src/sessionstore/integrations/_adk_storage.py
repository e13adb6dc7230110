"""Where SessionStoreSessionService (sessionstore.integrations.adk) keeps things: the sessionstore
session ids and labels of an ADK session and of the app and user state logs, and the records
those sessions hold besides ADK's events. Nothing here imports ADK or makes a call.

Ids. A sessionstore id is 1-200 characters of ``[A-Za-z0-9._:@~-]``; ADK's app names, user ids
and session ids are any strings. Each is escaped: ``[A-Za-z0-9._:-]`` is kept, any other
character becomes ``~`` and two upper-case hex digits per UTF-8 byte (``@`` is ``~40``, ``~`` is
``~7E``). The escaped parts are joined by ``@``, after the service's prefix and a letter for the
kind of record: ``s`` (an ADK session), ``u`` (a user's state), ``a`` (an app's state), e.g.
``adk:s@weather@alice@3f2c...``. An id that would be longer than 200 characters is replaced by
``<prefix><kind>~~<sha256 of the parts>``: ``~~`` never occurs in an escaped id, so the two forms
cannot collide. Escaping is one-to-one, so no two ADK sessions share an id.

Labels. Every session is labelled with its kind, app and (but for app state) user, so that
list_sessions lists an app's or a user's sessions with a label selector. A label value is 1-63
characters of ``[A-Za-z0-9._-]``, starting and ending alphanumeric: a name that is not is
labelled ``h`` and 40 hex digits of its sha256 instead. Two names could then share a label, so
the listing checks each session's header record for its exact app and user.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal, Optional

#: A sessionstore session id's longest length.
MAX_ID_LENGTH = 200

#: The label keys.
KIND_LABEL = "adk.sessionstore.dev/kind"
APP_LABEL = "adk.sessionstore.dev/app"
USER_LABEL = "adk.sessionstore.dev/user"

#: The kinds of sessionstore session the service writes, as the kind letter in ids and labels.
Kind = Literal["session", "user-state", "app-state"]
_KIND_LETTERS: dict[Kind, str] = {"session": "s", "user-state": "u", "app-state": "a"}

#: The key of the first message of an ADK session's log: the session's header.
HEADER_KEY = "adk_session"
#: The key of each message of an app or user state log: a state delta (keys without prefix).
DELTA_KEY = "adk_state_delta"

_KEPT = re.compile(r"[A-Za-z0-9._:-]")
_ID_CHARACTERS = re.compile(r"[A-Za-z0-9._:@~-]*")
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")
# The hashed form: prefix, kind letter, "~~", 64 hex digits.
_HASHED_LENGTH = 1 + 2 + 64


def check_prefix(prefix: str) -> str:
    """``prefix`` if ids can start with it, else ValueError saying why."""
    if not _ID_CHARACTERS.fullmatch(prefix) or prefix.startswith("."):
        raise ValueError(
            f"id_prefix {prefix!r} must be characters of [A-Za-z0-9._:@~-], not starting with '.'"
        )
    if len(prefix) + _HASHED_LENGTH > MAX_ID_LENGTH:
        raise ValueError(
            f"id_prefix must be at most {MAX_ID_LENGTH - _HASHED_LENGTH} characters long"
        )
    return prefix


def _escape(part: str) -> str:
    return "".join(
        c if _KEPT.fullmatch(c) else "".join(f"~{b:02X}" for b in c.encode("utf-8")) for c in part
    )


def storage_id(prefix: str, kind: Kind, *parts: str) -> str:
    """The sessionstore id of the record of ``kind`` named by ``parts`` (app, user, session)."""
    letter = _KIND_LETTERS[kind]
    escaped = prefix + letter + "".join("@" + _escape(part) for part in parts)
    if len(escaped) <= MAX_ID_LENGTH:
        return escaped
    digest = hashlib.sha256(json.dumps(list(parts)).encode("utf-8")).hexdigest()
    return f"{prefix}{letter}~~{digest}"


def sessions_prefix(prefix: str) -> str:
    """What the id of every ADK session (escaped or hashed) starts with."""
    return prefix + _KIND_LETTERS["session"]


def label_value(name: str) -> str:
    """``name`` as a label value: itself where it is one, else ``h`` and a hash of it."""
    if _LABEL_VALUE.fullmatch(name):
        return name
    return "h" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:40]


def labels(kind: Kind, app_name: str, user_id: Optional[str] = None) -> dict[str, str]:
    """The labels of a record of ``kind``."""
    result = {KIND_LABEL: kind, APP_LABEL: label_value(app_name)}
    if user_id is not None:
        result[USER_LABEL] = label_value(user_id)
    return result


def selector(app_name: str, user_id: Optional[str]) -> str:
    """The label selector of the ADK sessions of an app (and user)."""
    requirements = [f"{key}={value}" for key, value in labels("session", app_name, user_id).items()]
    return ",".join(requirements)


def header(
    app_name: str, user_id: str, session_id: str, state: dict[str, Any], create_time: float
) -> dict[str, Any]:
    """The first message of an ADK session's log: its names, its initial session-scoped state
    and when it was created (its last_update_time until an event is appended)."""
    return {
        HEADER_KEY: {
            "app_name": app_name,
            "user_id": user_id,
            "id": session_id,
            "state": state,
            "create_time": create_time,
        }
    }


def replay_deltas(records: list[str]) -> dict[str, Any]:
    """The state an app or user state log holds: its deltas applied in log order."""
    state: dict[str, Any] = {}
    for record in records:
        delta = json.loads(record).get(DELTA_KEY)
        if isinstance(delta, dict):
            state.update(delta)
    return state
