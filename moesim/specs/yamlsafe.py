"""Bounded YAML: one parse per file, with its size, nesting depth and alias expansion capped.

PyYAML's safe loader runs no code, but it will happily (a) expand a 1.7 KB "billion laughs"
file of nested aliases into a structure that every later walk (validation, a deep copy, a
``repr``) traverses billions of times, (b) recurse in C and crash on a few hundred thousand
nested brackets, and (c) keep the last of two equal keys without a word. This module composes
the document from libyaml's event stream itself, iteratively, counting every node as it would
be expanded (an alias counts the whole subtree it names) and the depth it would reach, and
stops at the first limit with a one-line :class:`SpecError`. Equal keys in one mapping are an
error. Only the plain JSON-like types come back: ``!!binary``, ``!!set``, ``!!omap`` and
``!!pairs`` are refused, and timestamps stay the strings they were written as (a spec has no
date fields, only text such as ``date: 2024-05``).

Messages quote no line of the file: a file given by mistake (``topology: /etc/shadow``) must not
have its contents echoed (see :func:`shown_key`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from moesim.errors import SpecError

# The largest spec moesim ships is 8 KB (scenarios/published/mleng-h200-8gpu-allreduce-sweep.yaml);
# 1 MiB is 128 times that and parses in well under a second.
MAX_FILE_BYTES = 1 << 20
# Specs nest about 6 deep (scenario > topology > tiers > tier > dims > value); 32 leaves room for
# any hand-written structure and stays far from the interpreter's recursion limit.
MAX_DEPTH = 32
# Values in one document after expanding aliases: a 1 MiB flow list holds at most ~2^19 values,
# so no honest file reaches 2^20 once its aliases are expanded; a billion-laughs file does at
# its sixth level.
MAX_NODES = 1 << 20

_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where built (about 10x faster)
_MERGE = "tag:yaml.org,2002:merge"
_REFUSED = {
    "tag:yaml.org,2002:binary": "!!binary (bytes)",
    "tag:yaml.org,2002:set": "!!set",
    "tag:yaml.org,2002:omap": "!!omap",
    "tag:yaml.org,2002:pairs": "!!pairs",
}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")


def shown_key(key: Any) -> str:
    """A mapping key as a message may show it: quoted when it looks like a field name, else
    only its length (a key that is a whole line of some other file is not echoed)."""
    if isinstance(key, bool) or key is None or isinstance(key, (int, float)):
        return repr(key)
    text = str(key)
    if _IDENT.fullmatch(text):
        return repr(text)
    return f"<a key of {len(text)} characters>"


class _Loader(_BASE):  # type: ignore[misc, valid-type]
    """The safe loader, with the refused tags raising and timestamps left as text."""


def _refuse(loader: Any, node: Node) -> Any:
    raise yaml.constructor.ConstructorError(
        None, None, f"{_REFUSED[node.tag]} values are not allowed in a spec", node.start_mark)


def _timestamp_as_text(loader: Any, node: Node) -> str:
    return str(loader.construct_scalar(node))


for _tag in _REFUSED:
    _Loader.add_constructor(_tag, _refuse)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


class _Limit(Exception):
    """A size or depth limit was hit while composing (turned into a SpecError)."""


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "somewhere"


class _Composer:
    """Builds the node graph of one document from the event stream, without recursion."""

    def __init__(self, loader: Any, max_nodes: int, max_depth: int) -> None:
        self.loader = loader
        self.max_nodes, self.max_depth = max_nodes, max_depth
        self.anchors: dict[str, tuple[Node, int, int]] = {}  # node, expanded size, height
        self.total = 0  # nodes as they will be expanded

    def _count(self, size: int, height: int, depth: int, mark: Any) -> None:
        self.total += size
        if self.total > self.max_nodes:
            raise _Limit(f"more than {self.max_nodes:,} values once YAML aliases are expanded "
                         f"(at {_where(mark)}); write the values out or shorten the lists")
        if depth + height > self.max_depth:
            raise _Limit(f"nested more than {self.max_depth} levels deep (at {_where(mark)})")

    def compose(self) -> Node | None:
        ld = self.loader
        ld.get_event()  # StreamStart
        if ld.check_event(StreamEndEvent):
            ld.get_event()
            return None
        ld.get_event()  # DocumentStart
        root = self._node()
        ld.get_event()  # DocumentEnd
        if not ld.check_event(StreamEndEvent):
            event = ld.peek_event()
            raise _Limit(f"more than one YAML document (a second starts at "
                         f"{_where(event.start_mark)}); keep one document per file")
        ld.get_event()
        return root

    def _node(self) -> Node:
        ld = self.loader
        # Each open collection: [node, anchor, expanded size, height, pending key node or None].
        stack: list[list[Any]] = []
        result: Node | None = None
        while result is None:
            event = ld.get_event()
            depth = len(stack)
            if isinstance(event, AliasEvent):
                if event.anchor not in self.anchors:
                    raise yaml.composer.ComposerError(
                        None, None, f"found undefined alias {shown_key(event.anchor)}",
                        event.start_mark)
                node, size, height = self.anchors[event.anchor]
                self._count(size, height, depth, event.start_mark)
                done: tuple[Node, int, int] | None = (node, size, height)
            elif isinstance(event, ScalarEvent):
                tag = event.tag
                if tag is None or tag == "!":
                    tag = ld.resolve(ScalarNode, event.value, event.implicit)
                node = ScalarNode(tag, event.value, event.start_mark, event.end_mark,
                                  style=event.style)
                self._count(1, 0, depth, event.start_mark)
                self._anchor(event.anchor, node, 1, 0)
                done = (node, 1, 0)
            elif isinstance(event, (SequenceStartEvent, MappingStartEvent)):
                seq = isinstance(event, SequenceStartEvent)
                tag = event.tag
                if tag is None or tag == "!":
                    tag = ld.resolve(SequenceNode if seq else MappingNode, None, event.implicit)
                cls = SequenceNode if seq else MappingNode
                node = cls(tag, [], event.start_mark, None, flow_style=event.flow_style)
                self._count(1, 1, depth, event.start_mark)
                stack.append([node, event.anchor, 1, 1, None, {}])
                continue
            elif isinstance(event, (SequenceEndEvent, MappingEndEvent)):
                node, anchor, size, height, _, _ = stack.pop()
                node.end_mark = event.end_mark
                self._anchor(anchor, node, size, height)
                done = (node, size, height)
            else:  # pragma: no cover - libyaml emits only the events above inside a document
                raise _Limit(f"unexpected YAML event {type(event).__name__}")
            if not stack:
                result = done[0]
                break
            self._attach(stack[-1], *done)
        return result

    def _anchor(self, anchor: str | None, node: Node, size: int, height: int) -> None:
        if anchor is not None:
            self.anchors[anchor] = (node, size, height)

    @staticmethod
    def _attach(parent: list[Any], node: Node, size: int, height: int) -> None:
        """Add a finished child to the open collection ``parent``; sizes and heights add up
        (the child's own count was already added to the running total)."""
        coll = parent[0]
        parent[2] += size
        parent[3] = max(parent[3], height + 1)
        if isinstance(coll, SequenceNode):
            coll.value.append(node)
            return
        key = parent[4]
        if key is None:
            if isinstance(node, ScalarNode) and node.tag != _MERGE:
                seen = parent[5]
                ident = (node.tag, node.value)
                if ident in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {shown_key(node.value)} (first at "
                        f"{_where(seen[ident])}); YAML would keep only the last: remove one",
                        node.start_mark)
                seen[ident] = node.start_mark
            parent[4] = node
        else:
            coll.value.append((key, node))
            parent[4] = None


def parse_yaml(text: str, *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> Any:
    """Parse one YAML document with the limits above; raises yaml.YAMLError or ``_Limit``."""
    loader = _Loader(text)
    try:
        node = _Composer(loader, max_nodes, max_depth).compose()
        return None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def yaml_problem(exc: BaseException) -> str:
    """What went wrong while parsing, in one line, without quoting the file's text."""
    if isinstance(exc, _Limit):
        return str(exc)
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = " ".join((exc.problem or exc.context or "malformed YAML").split())
        if len(what) > 120:
            what = what[:117] + "..."
        if isinstance(exc, yaml.constructor.ConstructorError):  # well-formed, not allowed
            return f"YAML at {_where(mark)}: {what}"
        if "maximum nesting depth" in what:
            # PyYAML >= 6.0.4 has a depth limit of its own, far above MAX_DEPTH, that its
            # scanner hits before the composer's: the same limit, said the same way
            return f"nested more than {MAX_DEPTH} levels deep (at {_where(mark)})"
        return f"malformed YAML at {_where(mark)}: {what}"
    if isinstance(exc, UnicodeDecodeError):
        return (f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                "save the file as UTF-8")
    if isinstance(exc, RecursionError):
        return "malformed YAML: nested too deeply"
    text = " ".join(str(exc).split())
    return f"malformed YAML: {text[:160]}"


# Errors a document can raise while parsing or constructing: libyaml's and PyYAML's, the
# limits, and ValueError / OverflowError from a scalar Python cannot build.
PARSE_ERRORS = (yaml.YAMLError, _Limit, ValueError, OverflowError, RecursionError)


def read_text_bounded(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    """The file's text, refusing a file over ``limit`` bytes, a folder and non-UTF-8 bytes."""
    try:
        if path.is_dir():
            raise SpecError("is a folder, not a file; name a YAML file", file=str(path))
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise SpecError(f"cannot read the file: {exc.strerror or type(exc).__name__}",
                        file=str(path)) from None
    if len(raw) > limit:
        raise SpecError(f"file is larger than {limit // 1024:,} KiB; a spec is a few KB "
                        "(moesim reads at most this much)", file=str(path))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(yaml_problem(exc), file=str(path)) from None
