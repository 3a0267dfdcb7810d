"""What the CLI prints: aligned tables for people, JSON for scripts.

JSON is snake_case with integers as numbers: protobuf's own mapping
(``MessageToDict``) camelCases field names and writes int64 as strings,
which every script then has to undo. Here a message becomes a dict of its
proto field names; timestamps are RFC 3339 strings, durations seconds,
enums their names, and a field that is unset (a message field, a oneof
member) is null rather than missing.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TypeAlias, TypeVar

from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.message import Message

from depot._exceptions import DepotError

JsonValue: TypeAlias = "None | bool | int | float | str | list[JsonValue] | dict[str, JsonValue]"

M = TypeVar("M", bound=Message)


def message_json(msg: Message) -> dict[str, JsonValue]:
    """``msg`` as JSON-ready data: proto field names, int64 as numbers, every field present."""
    out: dict[str, JsonValue] = {}
    for field in msg.DESCRIPTOR.fields:
        value = getattr(msg, field.name)
        enum = {v.number: v.name for v in field.enum_type.values} if field.enum_type is not None else None
        if field.is_repeated:
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                out[field.name] = {str(k): _value_json(v, None) for k, v in value.items()}
            else:
                out[field.name] = [_value_json(v, enum) for v in value]
        elif field.has_presence and not msg.HasField(field.name):
            out[field.name] = None
        else:
            out[field.name] = _value_json(value, enum)
    return out


def _value_json(value: object, enum: dict[int, str] | None) -> JsonValue:
    if isinstance(value, timestamp_pb2.Timestamp):
        return value.ToJsonString()
    if isinstance(value, duration_pb2.Duration):
        seconds = value.ToTimedelta().total_seconds()
        return int(seconds) if seconds.is_integer() else seconds
    if isinstance(value, Message):
        return message_json(value)
    if enum is not None and isinstance(value, int):
        return enum.get(value, value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"no JSON form for {type(value).__name__}")


def table(rows: Iterable[Sequence[object]], header: Sequence[str]) -> str:
    """Columns padded to their widest cell, no trailing spaces."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def show(opts: argparse.Namespace, data: JsonValue, text: str) -> int:
    """Prints ``data`` as JSON with ``--json``, else ``text``; the command's exit status."""
    print(json.dumps(data, indent=2, sort_keys=True) if opts.json else text)
    return 0


def show_message(opts: argparse.Namespace, msg: Message, text: str) -> int:
    """One resource: the message as JSON with ``--json``, else ``text``."""
    return show(opts, message_json(msg), text)


def show_messages(
    opts: argparse.Namespace, msgs: Sequence[M], header: Sequence[str], row: Callable[[M], Sequence[object]]
) -> int:
    """A listing: a JSON array of the messages with ``--json``, else a table of ``row(msg)``."""
    if opts.json:
        return show(opts, [message_json(m) for m in msgs], "")
    print(table([row(m) for m in msgs], header))
    return 0


def show_error(as_json: bool, err: DepotError) -> None:
    """An error on stderr: one line, or one JSON object with ``--json``."""
    if as_json:
        error: dict[str, JsonValue] = {
            "code": type(err).__name__,
            "reason": err.reason,
            "message": err.message,
            "field": err.field,
        }
        print(json.dumps({"error": error}, sort_keys=True), file=sys.stderr)
    else:
        print(f"depot: error: {type(err).__name__}: {err}", file=sys.stderr)


def short(name: str) -> str:
    """entities/e/projects/p/artifacts/a/versions/v1 -> e/p/a:v1 (and runs, registries)."""
    p = name.split("/")
    if len(p) == 8 and p[2] == "projects":
        return f"{p[1]}/{p[3]}/{p[5]}:{p[7]}"
    if len(p) == 8 and p[2] == "registries":
        return f"{p[1]}/wandb-registry-{p[3]}/{p[5]}:{p[7]}"
    if len(p) == 6 and p[4] == "runs":
        return f"run {p[1]}/{p[3]}/{p[5]}"
    return name


def last(name: str) -> str:
    """The last part of a resource name: entities/alice -> alice."""
    return name.rsplit("/", 1)[-1]


def when(ts: timestamp_pb2.Timestamp) -> str:
    """A timestamp for a table cell, to the second."""
    return ts.ToJsonString()[:19]
