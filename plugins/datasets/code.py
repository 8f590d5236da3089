"""Builders for code datasets: which programming language is this code in?"""
from __future__ import annotations

import io
import keyword
import random
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from probebank.data.examples import BuildContext
from probebank.errors import BuildError


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


def windows_with_offsets(text: str, min_chars: int, max_chars: int) -> list[tuple[int, str]]:
    """code_windows(text, ...) with the character offset where each window starts in `text`."""
    out, pos = [], 0
    for window in code_windows(text, min_chars, max_chars):
        start = text.find(window, pos)
        if start < 0:  # cannot happen: windows are substrings in order
            raise BuildError("a code window is not a substring of its file", field="builder")
        out.append((start, window))
        pos = start + len(window)
    return out


def _normalised(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def build_real_code_language(ctx: BuildContext) -> Iterator[dict]:
    """Windows of real code from several pinned packages, labelled with their language; group = the file.

    params.classes maps each class to {source, patterns, exclude?}: glob patterns inside the
    unpacked artifact of the named source. Per class at most max_files files (evenly spread
    over the sorted list) and at most max_windows_per_file windows per file (evenly spread)
    are kept. A window whose letters and digits repeat an earlier window's (licence headers,
    generated boilerplate) is dropped.
    """
    spec: dict[str, dict] = ctx.params["classes"]
    min_chars = int(ctx.params.get("min_chars", 300))
    max_chars = int(ctx.params.get("max_chars", 600))
    per_file = int(ctx.params.get("max_windows_per_file", 3))
    max_files = int(ctx.params.get("max_files", 80))
    seen: set[str] = set()
    for lang in ctx.card.labels.classes:
        if lang not in spec:
            raise BuildError(f"class '{lang}' has no entry in params.classes", field="params.classes",
                             fix="give every class a source and glob patterns")
        entry = spec[lang]
        root = ctx.fetch(entry["source"])
        exclude = [str(x) for x in entry.get("exclude", [])]
        paths = sorted({p for pattern in entry["patterns"] for p in root.glob(pattern)
                        if p.is_file() and not any(part in p.as_posix() for part in exclude)})
        kept_files = 0
        for path in spread(paths, max_files * 3):  # spread over the whole list; some files give no window
            if kept_files >= max_files:
                break
            text = read_code(path)
            if text is None:
                continue
            rel = f"{entry['source']}:{path.relative_to(root).as_posix()}"
            windows, keys = [], set()
            for window in code_windows(text, min_chars, max_chars):
                key = _normalised(window)
                if key and key not in seen and key not in keys:
                    windows.append(window)
                    keys.add(key)
            windows = spread(windows, per_file)
            if not windows:
                continue
            kept_files += 1
            for k, window in enumerate(windows):
                seen.add(_normalised(window))
                yield {"id": f"{lang}:{rel}:w{k}", "text": window, "label": lang, "group": rel}


@dataclass(frozen=True)
class PyToken:
    """One token of a Python file: its kind (keyword, identifier, string, comment, number, operator), char span."""

    kind: str
    start: int
    end: int


def python_tokens(text: str) -> list[PyToken] | None:
    """The classified tokens of a Python source file (None if it does not tokenize).

    f-strings are left out: Python 3.12 splits them into parts (with the names inside the
    braces as NAME tokens) where 3.11 gives one STRING, so keeping them would make the
    examples depend on the Python version.
    """
    line_starts = [0]
    for line in text.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))

    def offset(row: int, col: int) -> int:
        return line_starts[row - 1] + col

    fstring_types = {getattr(tokenize, n) for n in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, n)}
    out: list[PyToken] = []
    depth = 0  # inside an f-string (3.12+)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in fstring_types:
                depth += {"FSTRING_START": 1, "FSTRING_END": -1}.get(tokenize.tok_name[tok.type], 0)
                continue
            if depth:
                continue
            kind = None
            if tok.type == tokenize.NAME:
                kind = "keyword" if keyword.iskeyword(tok.string) else "identifier"
            elif tok.type == tokenize.STRING:
                prefix = tok.string[:tok.string.find(tok.string[-1])].lower()
                kind = None if "f" in prefix else "string"
            elif tok.type == tokenize.COMMENT:
                kind = "comment"
            elif tok.type == tokenize.NUMBER:
                kind = "number"
            elif tok.type == tokenize.OP:
                kind = "operator"
            if kind is not None:
                start, end = offset(*tok.start), offset(*tok.end)
                if text[start:end] != tok.string:  # defensive: CRLF or odd line ends
                    return None
                out.append(PyToken(kind, start, end))
    except (tokenize.TokenError, SyntaxError, IndexError):
        return None
    return out


def cap_targets(targets: list[tuple[int, int, str]], k: int, rng: random.Random) -> list[tuple[int, int, str]]:
    """At most k targets of each class, chosen at random, in text order."""
    by_class: dict[str, list[tuple[int, int, str]]] = {}
    for t in targets:
        by_class.setdefault(t[2], []).append(t)
    return sorted(t for group in by_class.values() for t in (group if len(group) <= k else rng.sample(group, k)))


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]+")


def token_kind_targets(text: str, tokens: list[PyToken]) -> list[tuple[int, int, str]]:
    """Every classified token is a target labelled with its kind."""
    return [(t.start, t.end, t.kind) for t in tokens]


def word_context_targets(text: str, tokens: list[PyToken]) -> list[tuple[int, int, str]]:
    """Every identifier-like word labelled code (an identifier token), string or comment (a word inside one).

    Keywords are not targets (always code); in a string the prefix letters and in a comment
    the words are found by regex inside the token's span.
    """
    out = []
    for t in tokens:
        if t.kind == "identifier" and t.end - t.start >= 2:
            out.append((t.start, t.end, "code"))
        elif t.kind in ("string", "comment"):
            body = text[t.start:t.end]
            skip = body.find(body[-1]) + 1 if t.kind == "string" else 1  # past the prefix and opening quote / '#'
            for m in _IDENT.finditer(body, skip):
                out.append((t.start + m.start(), t.start + m.end(), t.kind))
    return out


_TARGET_RULES = {"token-kind": token_kind_targets, "word-context": word_context_targets}


def build_python_tokens(ctx: BuildContext) -> Iterator[dict]:
    """Windows of real Python files; targets from Python's own tokenizer (params.rule: token-kind or word-context).

    Each file is tokenized whole, then cut into windows of whole lines; a target is kept when
    it lies entirely inside a window. Each window keeps at most max_targets_per_class targets of
    each class (seeded), so frequent classes (identifiers, operators) do not swamp the rest.
    group = the file.
    """
    rule = _TARGET_RULES.get(ctx.params.get("rule", ""))
    if rule is None:
        raise BuildError(f"params.rule must be one of {sorted(_TARGET_RULES)}", field="params.rule")
    root = ctx.fetch(ctx.params.get("source", "pygments"))
    min_chars = int(ctx.params.get("min_chars", 200))
    max_chars = int(ctx.params.get("max_chars", 500))
    per_file = int(ctx.params.get("max_windows_per_file", 6))
    per_class = int(ctx.params.get("max_targets_per_class", 3))
    classes = set(ctx.card.labels.classes)
    paths = sorted({p for pattern in ctx.params["patterns"] for p in root.glob(pattern) if p.is_file()})
    seen: set[str] = set()
    for path in paths:
        text = read_code(path)
        tokens = python_tokens(text) if text is not None else None
        if text is None or not tokens:
            continue
        rel = path.relative_to(root).as_posix()
        all_targets = [t for t in rule(text, tokens) if t[2] in classes]
        windows, keys = [], set()
        for s, w in windows_with_offsets(text, min_chars, max_chars):
            key = _normalised(w)
            if key and key not in seen and key not in keys:  # repeated windows (also within one file) once
                windows.append((s, w))
                keys.add(key)
        for k, (start, window) in enumerate(spread(windows, per_file)):
            end = start + len(window)
            inside = [(a - start, b - start, lab) for a, b, lab in all_targets if a >= start and b <= end]
            ex_id = f"{rel}:w{k}"
            targets = cap_targets(inside, per_class, ctx.rng(ex_id))
            if targets:
                seen.add(_normalised(window))
                yield {"id": ex_id, "text": window, "targets": targets, "group": rel}


BUILDERS = {"pygments-code": build_pygments_code, "real-code-language": build_real_code_language,
            "python-tokens": build_python_tokens}
