"""Builders for code datasets: which programming language is this code in?"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from probebank.errors import BuildError
from probebank.examples import BuildContext


def sdist_root(unpacked: Path) -> Path:
    """The single top folder of an unpacked sdist (e.g. Pygments-2.16.1/)."""
    tops = [p for p in Path(unpacked).iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise BuildError(f"expected one top folder in the unpacked sdist, found {[p.name for p in tops]}",
                         field="sources", fix="pin the .tar.gz sdist of the package")
    return tops[0]


def code_windows(text: str, min_chars: int, max_chars: int) -> list[str]:
    """Consecutive, non-overlapping windows of whole lines, each min_chars..max_chars characters long.

    A window closes as soon as it reaches min_chars; a line that would push it past max_chars
    starts a new window (a too-short window is dropped); a single line longer than max_chars
    (minified code, data blobs) is skipped and breaks the window. Leading and trailing empty
    lines are trimmed (indentation is kept).
    """
    windows: list[str] = []
    cur = ""
    for line in text.splitlines(keepends=True):
        if len(line) > max_chars:
            if len(cur) >= min_chars:
                windows.append(cur)
            cur = ""
            continue
        if cur and len(cur) + len(line) > max_chars:
            if len(cur) >= min_chars:
                windows.append(cur)
            cur = ""
        cur += line
        if len(cur) >= min_chars:
            windows.append(cur)
            cur = ""
    return [w.strip("\r\n") for w in windows if w.strip()]


def spread(items: list, k: int) -> list:
    """At most k items, evenly spaced over the list (all of them when there are few)."""
    if len(items) <= k:
        return items
    return [items[(i * len(items)) // k] for i in range(k)]


def read_code(path: Path) -> str | None:
    """The file as UTF-8 text, or None for binary or undecodable files."""
    data = path.read_bytes()
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def build_pygments_code(ctx: BuildContext) -> Iterator[dict]:
    """Windows of real code from the Pygments sdist, labelled with their language; group = the file."""
    root = sdist_root(ctx.fetch("pygments"))
    files: dict[str, list[str]] = ctx.params["files"]
    exclude = tuple(ctx.params.get("exclude_suffixes", [".output"]))
    min_chars = int(ctx.params.get("min_chars", 300))
    max_chars = int(ctx.params.get("max_chars", 600))
    per_file = int(ctx.params.get("max_windows_per_file", 60))
    for lang in ctx.card.labels.classes:
        if lang not in files:
            raise BuildError(f"class '{lang}' has no file patterns in params.files", field="params.files",
                             fix="list glob patterns (relative to the sdist's top folder) for every class")
        paths = sorted({p for pattern in files[lang] for p in root.glob(pattern)
                        if p.is_file() and not p.name.endswith(exclude)})
        for path in paths:
            text = read_code(path)
            if text is None:
                continue
            rel = path.relative_to(root).as_posix()
            for k, window in enumerate(spread(code_windows(text, min_chars, max_chars), per_file)):
                yield {"id": f"{lang}:{rel}:w{k}", "text": window, "label": lang, "group": rel}


BUILDERS = {"pygments-code": build_pygments_code}
