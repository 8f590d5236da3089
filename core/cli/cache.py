"""`probebank cache verify` and `probebank cache gc`: check the whole cache, and remove what nothing reaches."""
from __future__ import annotations

from pathlib import Path

import typer

from probebank.cli.common import IncludeOpt, app, console

cache_app = typer.Typer(no_args_is_help=True, help="Check the cache entry by entry, or remove what no current "
                                                   "key reaches (see docs/cache.md).")
app.add_typer(cache_app, name="cache")

GC_HELP = "\n\n".join((
    "Remove what no current key reaches, and say how much per kind.",
    "Removed: temporary leftovers of writers that are gone (names holding '.tmp-' or ending in '.tmp' whose "
    "process is not running; without a process id, older than an hour); the quarantine folder; lock files no "
    "process holds; entries of an older format (unsealed folders, converted models included; gates without a "
    ".sum; records/<key>.jsonl files; stores of another store format; hash memos of files gone or changed); "
    "built datasets whose name and version the current catalog (registry.yaml, plugins, --include folders) "
    "does not list; stores and records whose dataset content hash matches no built dataset that stays.",
    "Kept: every other entry (also a sealed one that fails its check: `cache verify --repair` sets it aside), "
    "partial stores of a built dataset that stays (they resume), sealed bases, gates, sources and converted "
    "models, assembled GGUFs and the hub folder hf/.",
))


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


@cache_app.command("verify")
def verify(repair: bool = typer.Option(False, "--repair", help="Quarantine every bad entry (it is recomputed "
                                                               "when next used)."),
           deep: bool = typer.Option(True, "--deep/--quick", help="--deep (the default) compares every file's "
                                                                  "size and sha256 with its seal; --quick, sizes "
                                                                  "only.")) -> None:
    """Check every cache entry against its seal: one line per bad entry, then a total; exit 1 if any is bad
    and --repair was not given."""
    from probebank.cache.inventory import entries, forget_checks, verdict
    from probebank.cache.quarantine import describe
    from probebank.paths import cache_root

    root = cache_root()
    forget_checks()  # an entry checked earlier in this process is hashed again: verify means it
    n = size = old = 0
    bad = []
    for entry in entries(root):
        v = verdict(entry, deep=deep)
        n, size = n + 1, size + entry.size
        if v.state == "old":
            old += 1
        elif v.state == "bad":
            bad.append(v)
            console.print(f"bad  {entry.kind:8} {describe(entry.path)}  {v.why}", highlight=False, soft_wrap=True)
    for v in bad if repair else []:
        v.repair()
    tail = f"; {old} of an older format or unfinished (`probebank cache gc` removes them)" if old else ""
    done = ", moved to quarantine/ (recomputed when next used)" if repair and bad else ""
    console.print(f"{n} entries, {human(size)} in {root} ({'sha256' if deep else 'sizes only'}): "
                  f"{len(bad)} bad{done}{tail}", highlight=False, soft_wrap=True)
    if bad and not repair:
        console.print("run `probebank cache verify --repair` to set the bad entries aside", highlight=False)
        raise typer.Exit(1)


@cache_app.command("gc", help=GC_HELP)
def gc(dry_run: bool = typer.Option(False, "--dry-run", help="List what would be removed; remove nothing."),
       include: list[Path] | None = IncludeOpt) -> None:
    from probebank.bases.corpus import CORPUS_FORMAT, CORPUS_NAME
    from probebank.cache.inventory import Reach, collect, free_locks, sweep
    from probebank.cache.quarantine import describe
    from probebank.data.registry import load_catalog
    from probebank.extract.store import STORE_FORMAT
    from probebank.paths import cache_root

    root = cache_root()
    catalog = load_catalog(include or [])  # a broken card stops gc here: nothing is judged by half a catalog
    built = {(e.card.name, f"v{e.card.version}") for e in catalog.entries.values()}
    built.add((CORPUS_NAME, f"f{CORPUS_FORMAT}"))  # the bases' training corpus is built outside the catalog
    garbage = collect(root, Reach(frozenset(built), STORE_FORMAT))
    locks = 0
    for path, _ in free_locks(root):
        locks += 1
        if not dry_run:
            path.unlink(missing_ok=True)  # while we hold it, so no one is waiting on this file
    verb = "would remove" if dry_run else "removed"
    for why, rows in garbage.items.items():
        console.print(f"{verb} {len(rows):5} {why:34} {human(sum(s for _, s in rows)):>9}", highlight=False)
        if dry_run:
            for path, size in rows:
                console.print(f"        {describe(path)}  {human(size)}", highlight=False, soft_wrap=True)
    if locks:
        console.print(f"{verb} {locks:5} {'unused lock files':34} {'':>9}", highlight=False)
    if not dry_run:
        sweep(garbage)
    total = sum(len(r) for r in garbage.items.values()) + locks
    console.print(f"{verb} {total} items, {human(garbage.size)} from {root}", highlight=False, soft_wrap=True)
