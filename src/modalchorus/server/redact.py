"""Keep the server machine's folders out of what the HTTP API sends.

``modalchorus serve --host 0.0.0.0`` lets remote users read every answer; they need not
learn where the workspace, the datasets, the home folder or the temporary folder are.
The server's own messages name items by id and files by name. Texts written deeper down
(the error of a failed job, e.g. an image a tower-scope alignment cannot read, or a
library's message) pass through a redactor before they are sent:

* an image item's file (its recorded ``source``) becomes the item's id;
* any other absolute path (POSIX, Windows or a ``file://`` URL) becomes its last part,
  the name of the file or folder.

A path below a known folder (the workspace, ``$MODALCHORUS_DATA_DIR``, the folders of the
items' files, the home, temporary and working folders) is recognised with the spaces in
that folder's own path, and also without its leading ``/``, as some libraries print
paths (``Not found: tmp/ws/lance/...``). Paths inside another token are not touched:
item ids (``coco/images/1.jpg``), fractions (``256/2000``) and URLs.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from modalchorus.store import Workspace

#: What ends a path in a message, besides white space: quotes, brackets, separators.
_STOP = r"""\s'"`,;:()\[\]{}<>|"""
#: Not a path's start when it follows one of these (it is inside an id, a URL, a word).
_INSIDE = r"(?<![\w.~:/\\-])"
#: The rest of a path after its start.
_REST = rf"[^{_STOP}]*"
#: An absolute path: ``/a``, ``C:\a``, ``C:/a``, ``\\host\share``, ``file:///a``.
_ABSOLUTE = rf"(?:file://)?(?:/|[A-Za-z]:[\\/]|\\\\)[^{_STOP}]+"
_GENERIC = re.compile(_INSIDE + _ABSOLUTE)
#: Extra space-separated words tried when a path with spaces may be an item's file.
_MAX_WORDS = 8
_WORD = re.compile(rf"[ ]+[^{_STOP}]+")
#: A CIFAR-10 item's source: ``<batch file>#<row>``.
_BATCH_ROW = re.compile(r"#\d+$")
#: A path ends before one of these, or at a full stop that ends the sentence.
_END = re.compile(rf"(?=[{_STOP}]|\.(?:\s|$)|$)")


def _last_part(path: str) -> str:
    """The file or folder name a path ends with (a URL's too)."""
    parts = [part for part in re.split(r"[/\\]+", path.removeprefix("file://")) if part]
    return parts[-1] if parts else ""


def default_folders() -> list[str]:
    """Folders every server machine has: home, temporary, working and data folders."""
    folders = [Path(tempfile.gettempdir())]
    for where in (Path.home, Path.cwd):
        # RuntimeError: no home folder; OSError: a removed working folder
        with contextlib.suppress(OSError, RuntimeError):
            folders.append(where())
    if data_dir := os.environ.get("MODALCHORUS_DATA_DIR"):
        folders.append(Path(data_dir))
    return _forms(folders)


def _forms(folders: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Each folder as given, absolute and resolved (symbolic links followed)."""
    out: set[str] = set()
    for folder in folders:
        forms = [Path(folder)]
        with contextlib.suppress(OSError, RuntimeError):  # e.g. a symbolic link loop
            forms += [Path(folder).absolute(), Path(folder).resolve()]
        for form in forms:
            text = str(form)
            if len(form.parts) > 1:  # never the root folder itself
                out.add(text)
    return sorted(out, key=len, reverse=True)


def _folder_pattern(folders: list[str]) -> re.Pattern[str] | None:
    """Paths below any of ``folders`` (each with or without its leading separator)."""
    alternatives = []
    for folder in folders:
        alternatives.append(re.escape(folder))
        bare = folder.lstrip("/\\")
        if bare != folder and len(re.split(r"[/\\]+", bare)) > 1:  # "tmp/ws", never "tmp"
            alternatives.append(re.escape(bare))
    if not alternatives:
        return None
    # A folder ends at a separator, a stop character or the end (``/tmp`` is not ``/tmpx``).
    return re.compile(
        _INSIDE + rf"(?:file://)?(?:{'|'.join(alternatives)})(?=[\\/{_STOP}]|$)(?:[\\/]{_REST})?"
    )


def redact_paths(
    text: str,
    folders: Iterable[str] = (),
    sources: dict[str, str] | None = None,
) -> str:
    """``text`` with every absolute path replaced by an item id or a file name.

    Parameters
    ----------
    text : str
        A message about to be sent.
    folders : Iterable[str]
        Folders whose paths may hold spaces (see the module docstring), besides
        :func:`default_folders`.
    sources : dict[str, str] | None
        ``{file path: item id}``: these paths become the item's id.

    Returns
    -------
    str
    """
    if "/" not in text and "\\" not in text:
        return text
    patterns = [_GENERIC]
    known = _folder_pattern(_forms([*folders, *default_folders()]))
    if known is not None:
        patterns.insert(0, known)
    sources = sources or {}
    out, position = [], 0
    while True:
        found = [m for m in (p.search(text, position) for p in patterns) if m is not None]
        if not found:
            break
        # The leftmost match; at the same start the known folder's (it may hold spaces).
        match = min(found, key=lambda m: (m.start(), -len(m.group())))
        start, end = match.start(), match.end()
        replacement = None
        for length in _source_lengths(text, start, end):
            item_id = sources.get(text[start : start + length])
            if item_id is not None:
                replacement, end = item_id, start + length
                break
        if replacement is None:
            path = match.group()
            if path.endswith(".") and _END.match(text, end) and len(path) > 1:
                path, end = path[:-1], end - 1  # the full stop ends the sentence
            replacement = _last_part(path)
        out.append(text[position:start])
        out.append(replacement)
        position = end
    out.append(text[position:])
    return "".join(out)


def _source_lengths(text: str, start: int, end: int) -> list[int]:
    """Lengths, longest first, at which a path starting at ``start`` may end: after the
    match, or after some of the space-separated words that follow it (a file name with
    spaces), each at a path's end (before a stop character or a sentence's full stop)."""
    ends = [end]
    position = end
    for _ in range(_MAX_WORDS):
        word = _WORD.match(text, position)
        if word is None:
            break
        position = word.end()
        ends.append(position)
    lengths = []
    for stop in ends:
        lengths.append(stop - start)
        if text[start:stop].endswith(".") and _END.match(text, stop):
            lengths.append(stop - start - 1)
    return sorted(set(lengths), reverse=True)


class PathRedactor:
    """:func:`redact_paths` for one workspace: its folder, its items' files and folders.

    The items are read when a text holds something like a path (rarely: an error), so
    the redactor follows the workspace as items come and go.

    Parameters
    ----------
    workspace : Workspace
    """

    def __init__(self, workspace: Workspace) -> None:
        self._workspace = workspace
        self._folder = _folder_pattern(_forms([workspace.path, *default_folders()]))

    def __call__(self, text: str) -> str:
        """``text`` with the server's paths replaced (see :func:`redact_paths`)."""
        if not _GENERIC.search(text) and not (self._folder and self._folder.search(text)):
            return text  # e.g. a progress message: no need to read the items
        folders = [str(self._workspace.path)]
        sources: dict[str, str] = {}
        try:
            items = self._workspace.items(kind="image")
        except Exception:  # noqa: BLE001 - a damaged workspace still gets generic redaction
            items = None
        if items is not None:
            for item_id, source in zip(items["id"], items["source"], strict=True):
                if isinstance(source, str) and source:
                    sources[source] = item_id
                    # A CIFAR-10 row's source is "<batch file>#<row>".
                    folders.append(os.path.dirname(_BATCH_ROW.sub("", source)))
        return redact_paths(text, dict.fromkeys(folders), sources)
