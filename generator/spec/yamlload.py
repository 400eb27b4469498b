"""Load YAML safely while remembering where every node came from.

Why compose + SafeLoader: `yaml.load` with the full loader can build arbitrary Python objects
(`!!python/object/apply:os.system`), so a shared question bank could run code. The safe loader's
constructor refuses every such tag. We compose the node tree ourselves so that each value keeps
its file:line:col, and validation errors found much later can still point at the line.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from generator.errors import Location, SpecError, display_path

__all__ = ["MAX_FILE_BYTES", "Positions", "load_yaml", "load_yaml_text", "read_regular_file"]

KeyPath = tuple[str | int, ...]

MAX_NODES = 100_000
# The bank's largest file has about 4 KB; a spec of a megabyte is a mistake (or a trap).
MAX_FILE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Positions:
    """Where each value (and each mapping key) of a loaded document starts."""

    file: str
    values: dict[KeyPath, tuple[int, int, str | None]] = field(default_factory=dict)
    keys: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)

    def at(self, path: KeyPath, *, key: bool = False) -> Location:
        """Location of the value at `path` (or of its key), falling back to the nearest parent."""
        path = tuple(path)
        while True:
            if key and path in self.keys:
                line, col = self.keys[path]
                return Location(self.file, line, col)
            if path in self.values:
                line, col, _ = self.values[path]
                return Location(self.file, line, col)
            if not path:
                return Location(self.file, 1, 1)
            path = path[:-1]

    def text_start(self, path: KeyPath) -> Location:
        """Location of the first character of a string value's text.

        A block scalar (`|` or `>`) starts on the line after its indicator, so line N of the text
        is at `text_start(path).line + N - 1`.
        """
        entry = self.values.get(tuple(path))
        if entry is None:
            return self.at(path)
        line, col, style = entry
        if style in ("|", ">"):
            return Location(self.file, line + 1, None)
        return Location(self.file, line, col)


def read_regular_file(path: str | Path, limit: int = MAX_FILE_BYTES, what: str = "file") -> bytes:
    """The bytes of a regular file of at most `limit` bytes, refusing anything else unread.

    Why so careful: a bank is often someone else's folder. A symbolic link in it could point at
    /etc/passwd (whose text a YAML error would then quote) or /dev/zero (endless), and a named
    pipe blocks whoever opens it. So the path is looked at first (`lstat`: a link is not
    followed), then opened with O_NOFOLLOW (a link put there since is refused) and O_NONBLOCK (a
    pipe put there since does not block the open), and checked again on the open file.

    Raises:
        OSError: its message names the path and why (no such file, a link, not a regular file,
            too large); callers turn it into their stage's error.
    """
    shown = display_path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise OSError(f"{shown}: no such file") from None
    except OSError as e:
        raise OSError(f"{shown}: cannot read ({e.strerror})") from None
    _check_kind(info, shown, limit, what)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise OSError(f"{shown}: cannot read ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        _check_kind(os.fstat(fd), shown, limit, what)
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(f"{shown}: {what} larger than {limit} bytes; not read")
    return data


def _check_kind(info: os.stat_result, shown: str, limit: int, what: str) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise OSError(f"{shown}: a symbolic link; only regular files are read (copy the file here instead)")
    if not stat.S_ISREG(info.st_mode):
        kind = ("a folder" if stat.S_ISDIR(info.st_mode) else "a named pipe" if stat.S_ISFIFO(info.st_mode)
                else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "a special file")
        raise OSError(f"{shown}: {kind}, not a regular file; not read")
    if info.st_size > limit:
        raise OSError(f"{shown}: {what} of {info.st_size} bytes, larger than {limit}; not read")


def load_yaml(path: str | Path) -> tuple[Any, Positions]:
    """Read and parse a YAML file (a regular file: `read_regular_file`); errors are `SpecError` with file:line:col."""
    shown = display_path(path)
    try:
        text = read_regular_file(path).decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"{shown}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise SpecError(str(e)) from None
    return load_yaml_text(text, shown)


def load_yaml_text(text: str, file: str) -> tuple[Any, Positions]:
    """Parse YAML text named `file` (used in messages)."""
    if _LIBYAML is not None:
        with contextlib.suppress(Exception):  # any problem is reported as the pure-Python parser words it, below
            return _load(_LIBYAML, text, file)
    return _load(yaml.SafeLoader, text, file)


# libyaml's parser (PyYAML's C extension) with the same safe constructor: loading the bank took a
# tenth of a second before the first question could be solved, two thirds of it in the pure-Python
# parser. It gives the same values, positions and styles (tests/test_yamlload.py reads every spec
# of the project both ways), but words errors its own way, so a document it refuses is parsed
# again by the pure-Python parser, whose messages the docs and tests show.
_LIBYAML: type[yaml.SafeLoader] | None = getattr(yaml, "CSafeLoader", None)


def _load(loader_class: type[yaml.SafeLoader], text: str, file: str) -> tuple[Any, Positions]:
    positions = Positions(file)
    try:
        loader = loader_class(text)
    except yaml.reader.ReaderError as e:  # control characters: raised before any parsing
        raise SpecError(f"{_reader_location(text, e, file)}: YAML syntax: {_reader_problem(e)}") from None
    budget = [MAX_NODES]
    try:
        node = loader.get_single_node()
        if node is None:
            return None, positions
        return _convert(loader, node, (), positions, budget), positions
    except yaml.MarkedYAMLError as e:
        raise SpecError(_explain(e, file)) from None
    except yaml.reader.ReaderError as e:
        raise SpecError(f"{_reader_location(text, e, file)}: YAML syntax: {_reader_problem(e)}") from None
    except yaml.YAMLError as e:
        raise SpecError(f"{Location(file, 1, 1)}: YAML syntax: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise SpecError(f"{Location(file, 1, 1)}: YAML syntax: nesting is too deep") from None
    finally:
        loader.dispose()


def _explain(e: yaml.MarkedYAMLError, file: str) -> str:
    mark = e.problem_mark or e.context_mark
    where = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
    problem = e.problem or e.context or "invalid YAML"
    if isinstance(e, yaml.constructor.ConstructorError) and "tag" in problem:
        return f"{where}: YAML syntax: tag {_tag_of(problem)} is not allowed (only plain YAML data is)"
    problem = problem.removeprefix("but ")
    if e.problem and e.context:
        # The context says what the parser was inside of, often where the real mistake is
        # (an unclosed bracket or quote opened lines earlier).
        start = e.context_mark
        if start is not None and mark is not None and (start.line, start.column) != (mark.line, mark.column):
            problem += f" ({e.context} at line {start.line + 1}, column {start.column + 1})"
        else:
            problem += f" ({e.context})"
    return f"{where}: YAML syntax: {problem}"


def _reader_location(text: str, e: yaml.reader.ReaderError, file: str) -> Location:
    position = max(0, min(int(e.position), len(text)))
    line = text.count("\n", 0, position) + 1
    col = position - (text.rfind("\n", 0, position) + 1) + 1
    return Location(file, line, col)


def _reader_problem(e: yaml.reader.ReaderError) -> str:
    character = e.character
    code = f"#x{character:04x}" if isinstance(character, int) else repr(character)
    return f"unacceptable character {code}: {e.reason}"


def _tag_of(problem: str) -> str:
    start = problem.find("'")
    end = problem.rfind("'")
    return problem[start : end + 1] if 0 <= start < end else "(unknown)"


def _convert(loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath, positions: Positions, budget: list[int]) -> Any:
    # Aliases make the node graph a DAG; expanding it into plain data could grow exponentially
    # ("billion laughs"), so the number of values produced is capped.
    budget[0] -= 1
    if budget[0] < 0:
        raise yaml.MarkedYAMLError(
            problem=f"the document expands to more than {MAX_NODES} values (anchors and aliases?)",
            problem_mark=node.start_mark,
        )
    style = getattr(node, "style", None) or None  # (libyaml says "" for a plain scalar, PyYAML None)
    positions.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1, style)
    if isinstance(node, yaml.MappingNode):
        if node.tag != "tag:yaml.org,2002:map":
            raise yaml.constructor.ConstructorError(
                None, None, f"could not determine a constructor for the tag '{node.tag}'", node.start_mark
            )
        loader.flatten_mapping(node)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or isinstance(key, bool):
                raise yaml.MarkedYAMLError(
                    problem=f"mapping keys must be plain names, got {key!r}", problem_mark=key_node.start_mark
                )
            key = str(key)
            if key in result:
                raise yaml.MarkedYAMLError(problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark)
            positions.keys[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = _convert(loader, value_node, path + (key,), positions, budget)
        return result
    if isinstance(node, yaml.SequenceNode):
        if node.tag != "tag:yaml.org,2002:seq":
            raise yaml.constructor.ConstructorError(
                None, None, f"could not determine a constructor for the tag '{node.tag}'", node.start_mark
            )
        return [_convert(loader, item, path + (i,), positions, budget) for i, item in enumerate(node.value)]
    value = loader.construct_object(node, deep=True)
    # Dates and binary blobs are never meaningful in a spec; keep them as the text written.
    if not isinstance(value, (str, int, float, bool, type(None))):
        return node.value
    return value
