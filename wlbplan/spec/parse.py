"""YAML → plain data, keeping the position of every node and key.

Composes the node tree (it keeps line/column for every node and shows the duplicate keys
PyYAML's constructor silently drops), then walks it into dicts, lists and scalars, with
limits on depth and size that stop alias bombs early.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from wlbplan.spec.report import Data, PathT, Report, Span

_MAX_DEPTH = 64  # no sane spec nests deeper than ~8; stops recursion bombs early
_MAX_NODES = 100_000  # stops alias "billion laughs" expansion
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAGS = {"tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp"}  # dates stay text
_SAFE = SafeConstructor()
_SCALARS: dict[str, tuple[str, Callable[[ScalarNode], object]]] = {
    "tag:yaml.org,2002:null": ("null", lambda node: None),
    "tag:yaml.org,2002:bool": ("boolean", _SAFE.construct_yaml_bool),
    "tag:yaml.org,2002:int": ("integer", _SAFE.construct_yaml_int),
    "tag:yaml.org,2002:float": ("number", _SAFE.construct_yaml_float),
}


UNUSABLE = object()  # no document to validate (None is a document: `~`, `&a`)
# libyaml's composer, when PyYAML was built with it: ~15x faster on a fleet's spec, with
# the same nodes and marks.
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


class _TooDeep(Exception):
    """The YAML nests deeper than any spec: stopped where it happens (``mark``)."""

    def __init__(self, mark: yaml.Mark) -> None:
        super().__init__("the YAML is nested too deeply")
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing deep nesting as soon as it is read: its scanner
    slows down with every open bracket (3000 of them took seconds to refuse) and its
    composer recurses once per level."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level >= _MAX_DEPTH:
            raise _TooDeep(self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.depth > _MAX_DEPTH:
            raise _TooDeep(self.get_mark())
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Abort(Exception):
    """Building the data cannot go on usefully (alias loop, bomb); carries the reason."""

    def __init__(self, node: Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


def parse(raw: bytes, report: Report) -> Any:
    """The document as plain data, or UNUSABLE after reporting why there is none."""
    try:
        report.text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        _report_undecodable(raw, err, report)
        return UNUSABLE
    try:
        root = _compose(report.text)
    except yaml.YAMLError as err:
        _report_yaml_error(err, report)
        return UNUSABLE
    except _TooDeep as err:
        report.add("error", (), str(err), span=Span.at((err.mark.index, err.mark.line,
                                                         err.mark.column)))
        return UNUSABLE
    if root is None:
        hint = "Start from examples/self-signed.yaml."
        report.add("error", (), "the spec is empty", hint, span=Span.at((0, 0, 0)))
        return UNUSABLE
    if _expanded_size(root, {}, set()) > _MAX_NODES:
        # Counted before anything is built: a "billion laughs" is refused in milliseconds.
        report.add("error", (), _TOO_LARGE, span=Span.of(root))
        return UNUSABLE
    try:
        return _Builder(report).build(root, ())
    except _Abort as abort:
        report.add("error", (), abort.message, span=Span.of(abort.node))
        return UNUSABLE


_TOO_LARGE = "the document is too large (an alias expanding too often?)"


def _compose(text: str) -> Node | None:
    """libyaml's node tree when it reads the document and no path in it is deeper than a
    spec's; otherwise PyYAML's own composer (``_Loader``), which words and places every
    syntax error and stops deep nesting where it starts, as the diagnostics expect."""
    if _FAST_LOADER is not None:
        try:
            root = yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            pass
        else:
            if root is None or _height(root, _MAX_DEPTH + 1, {}, set()) <= _MAX_DEPTH:
                return root
    return yaml.compose(text, Loader=_Loader)


def _height(node: Node, room: int, heights: dict[int, int], open_: set[int]) -> int:
    """Nodes on the longest path down from ``node``, aliases followed, each node measured
    once; past ``room`` levels the answer is only "more than room" (so the recursion
    stays shallow whatever the document). A node inside itself ends its path."""
    known = heights.get(id(node))
    if known is not None:
        return known
    if room <= 0:
        return 1
    if id(node) in open_ or isinstance(node, ScalarNode):
        return 1
    open_.add(id(node))
    children = (node.value if isinstance(node, SequenceNode)
                else [part for pair in node.value for part in pair])
    height = 1 + max((_height(child, room - 1, heights, open_) for child in children),
                     default=0)
    open_.discard(id(node))
    heights[id(node)] = height
    return height


def _expanded_size(node: Node, sizes: dict[int, int], open_: set[int]) -> int:
    """How many nodes building ``node`` would visit, every alias expanded, counted once
    per distinct node (so aliases cost nothing here); capped just past ``_MAX_NODES``.
    A node inside itself counts nothing: the builder reports that loop."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    if id(node) in open_ or isinstance(node, ScalarNode):
        return 1
    open_.add(id(node))
    children = (node.value if isinstance(node, SequenceNode)
                else [part for pair in node.value for part in pair])
    total = 1
    for child in children:
        total = min(total + _expanded_size(child, sizes, open_), _MAX_NODES + 1)
    open_.discard(id(node))
    sizes[id(node)] = total
    return total


def _report_undecodable(raw: bytes, err: UnicodeDecodeError, report: Report) -> None:
    # No text, so count in bytes; report.text stays "" and byte offset = index.
    line_start = raw.rfind(b"\n", 0, err.start) + 1
    mark = (err.start, raw.count(b"\n", 0, err.start), err.start - line_start)
    message = f"the file is not UTF-8 (byte 0x{raw[err.start]:02x})"
    report.add("error", (), message, span=Span.at(mark))


def _report_yaml_error(err: yaml.YAMLError, report: Report) -> None:
    span = None
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        span = Span.at((mark.index, mark.line, mark.column))
        # PyYAML's own order reads as one sentence: "while parsing X, expected Y".
        said = f"{err.context}, {err.problem}" if err.context else err.problem
        message = f"YAML syntax error: {said}"
    elif isinstance(err, yaml.reader.ReaderError):
        before = report.text[: err.position]
        line_start = before.rfind("\n") + 1
        span = Span.at((err.position, before.count("\n"), err.position - line_start))
        char = err.character
        code = char if isinstance(char, int) else ord(char)
        message = f"YAML syntax error: {err.reason} (U+{code:04X})"
    else:  # pragma: no cover - every PyYAML error is one of the two above
        message = f"YAML syntax error: {err}"
    report.add("error", (), message, span=span)


class _Builder:
    """Walks the node tree into dicts/lists/scalars, recording every node's span."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.count = 0
        self.active: set[int] = set()  # nodes on the current walk: a repeat is an alias loop

    def build(self, node: Node, path: PathT) -> Any:
        self.count += 1
        if self.count > _MAX_NODES:
            raise _Abort(node, _TOO_LARGE)
        if len(path) > _MAX_DEPTH:
            raise _Abort(node, "the document is nested too deeply")
        self.report.values[path] = Span.of(node)
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        with self._walking(node):
            if isinstance(node, SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            result: Data = {}
            self._fill(result, node, path, report_duplicates=True)
            return result

    @contextlib.contextmanager
    def _walking(self, node: Node) -> Iterator[None]:
        if id(node) in self.active:
            raise _Abort(node, "recursive YAML alias (a node that contains itself)")
        self.active.add(id(node))
        try:
            yield
        finally:
            self.active.discard(id(node))

    def _scalar(self, node: ScalarNode, path: PathT) -> Any:
        if node.tag in _STR_TAGS:
            if "\x00" in node.value:  # would break paths and argv much later, far from here
                self.report.error(path, "NUL characters are not allowed")
            return node.value
        kind, construct = _SCALARS.get(node.tag, ("", None))
        if construct is None:
            self.report.error(path, f"unsupported YAML tag {node.tag}")
            return node.value
        try:
            value = construct(node)
        except (ValueError, OverflowError, yaml.YAMLError):
            self.report.error(path, f"{node.value!r} is not a valid {kind}")
            return node.value
        if isinstance(value, float) and not math.isfinite(value):
            # .nan and .inf slip through every JSON Schema range check.
            self.report.error(path, f"{node.value!r} is not a finite number")
        if not node.style:  # plain: None from PyYAML's parser, "" from libyaml's
            self.report.plain[path] = node.value
        return value

    def _fill(self, result: Data, node: Node, path: PathT, report_duplicates: bool) -> None:
        """Add ``node``'s entries to ``result``; YAML merge keys (``<<``) fill the gaps."""
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in result:
                if report_duplicates:
                    self._duplicate(key_node, (*path, key))
                continue
            self.report.keys[(*path, key)] = Span.of(key_node)
            result[key] = self.build(value_node, (*path, key))
        for source in merges:
            self._merge(result, source, path)

    def _merge(self, result: Data, source: Node, path: PathT) -> None:
        items = source.value if isinstance(source, SequenceNode) else [source]
        for item in items:
            if not isinstance(item, MappingNode):
                span = Span.of(item)
                self.report.add("error", path, "merge key << needs a mapping", span=span)
                continue
            with self._walking(item):
                self._fill(result, item, path, report_duplicates=False)

    def _key(self, node: Node, path: PathT) -> str | None:
        # Keys are names here, so the raw text is the key: `1:` and `"1":` are the same.
        if isinstance(node, ScalarNode) and "\x00" not in node.value:
            return str(node.value)
        span = Span.of(node)
        self.report.add("error", path, "mapping keys must be plain text", span=span)
        return None

    def _duplicate(self, key_node: Node, path: PathT) -> None:
        first = self.report.line_of(path)
        # PyYAML would silently keep the last value; other YAML tools keep the first or fail.
        self.report.add(
            "error",
            path,
            f"duplicate key '{path[-1]}' (first at line {first})",
            "YAML tools disagree on which value of a repeated key wins; keep one.",
            span=Span.of(key_node),
        )

