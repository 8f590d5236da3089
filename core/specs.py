"""A plugin object as the command line names it: `NAME`, `NAME:key=value:key=value` or `NAME:PATH`.

One syntax for `--methods` (`milp:objective=logistic`) and `--bases` (`sae-topk:k=16:expansion=2`,
`sae:/path/to/folder`). Values read as int, then float, then bool (`true` / `false`), else text.
Records name the object by its `label`: the spec as written, so two settings of one method or
basis are never mixed up in summaries and leaderboards.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probebank.errors import ConfigError


@dataclass(frozen=True)
class Spec:
    """A parsed spec: registered name, keyword settings (in the order written) and an optional path argument."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()
    path: str | None = None

    @property
    def label(self) -> str:
        """How records name this object: the spec as written, normalised."""
        if self.path is not None:
            return f"{self.name}:{self.path}"
        return self.name + "".join(f":{k}={_text(v)}" for k, v in self.params)

    def kwargs(self) -> dict[str, Any]:
        out = dict(self.params)
        if self.path is not None:
            out["path"] = self.path
        return out


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def parse_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.lower() == "none":
        return None
    return text


def parse_spec(spec: str, *, option: str = "--methods", example: str = "milp:objective=logistic") -> Spec:
    """'pca' | 'sae-topk:k=16:expansion=2' | 'sae:/path/to/folder'; errors name the option."""
    spec = spec.strip()
    name, _, rest = spec.partition(":")
    if not name:
        raise ConfigError(f"empty name in '{spec}'", field=option, fix=f"write e.g. {example}")
    if not rest:
        return Spec(name)
    parts = rest.split(":")
    if all("=" in p for p in parts):
        params = []
        for p in parts:
            key, _, val = p.partition("=")
            if not key.isidentifier():
                raise ConfigError(f"setting '{p}' of '{name}' has no valid name", field=option,
                                  fix="write settings as name:key=value:key=value")
            params.append((key, parse_value(val)))
        keys = [k for k, _ in params]
        if len(set(keys)) != len(keys):
            raise ConfigError(f"'{spec}' sets a key twice", field=option, fix="give each setting once")
        return Spec(name, tuple(params))
    return Spec(name, (), rest)  # a path (e.g. a folder of SAE weights)


def parse_specs(text: str | list[str] | None, *, option: str, example: str) -> list[Spec]:
    """A comma-separated list of specs (or a list of spec strings), each label once."""
    items = text.split(",") if isinstance(text, str) else list(text or [])
    specs = [parse_spec(t, option=option, example=example) for t in items if t.strip()]
    labels = [s.label for s in specs]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ConfigError(f"{', '.join(dupes)} listed twice", field=option, fix="list each once")
    return specs
