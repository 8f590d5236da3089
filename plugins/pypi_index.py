"""Download one pinned file from the package index pip is configured with, without running any of its code.

`pip download` of an sdist prepares the sdist's metadata (runs its setup.py or build backend)
before we could check its sha256. Here the file itself is fetched: the locations pip would search
(PIP_INDEX_URL, else `pip config` download./install./global.index-url, else pip's own default;
then extra-index-url and find-links), each read as a PEP 503 simple page `<index>/<normalised-name>/`
(or, for a find-links folder, listed), the link whose filename equals the pin's is downloaded with
urllib, and the caller checks its sha256 before anything unpacks it. Nothing is built.
"""
from __future__ import annotations

import os
import re
import shlex
import ssl
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

from probebank.data.schema import SourcePin
from probebank.errors import SourceError

ACCEPT = "text/html"  # the PEP 503 page (an index that also speaks PEP 691 JSON answers HTML to this)
DEFAULT_TIMEOUT_S = 60.0


def normalise(name: str) -> str:
    """The PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_config() -> dict[str, str]:
    """pip's configuration as `pip config list` prints it (files and PIP_* environment), key -> value."""
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                             env=env, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    config: dict[str, str] = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            config[key.strip()] = value.strip().strip("'\"")
    return config


def _setting(config: dict[str, str], name: str) -> str | None:
    """One pip setting as pip download reads it: environment, then the download, install, global sections."""
    env = os.environ.get("PIP_" + name.upper().replace("-", "_"))
    if env:  # as in pip, an empty variable leaves the configuration files in charge
        return env
    for section in ("download", "install", "global"):
        if f"{section}.{name}" in config:
            return config[f"{section}.{name}"]
    return None


def _default_index() -> str:
    """pip's built-in index, read from pip itself (so no registry host is written here)."""
    try:
        from pip._internal.models.index import PyPI
    except ImportError as exc:
        raise SourceError(f"no package index is configured and pip's default cannot be read ({exc})",
                          field="PIP_INDEX_URL", fix="set PIP_INDEX_URL to your package index") from None
    return str(PyPI.simple_url)


def locations() -> tuple[list[str], list[str]]:
    """(simple index URLs, find-links locations) in the order pip's configuration names them."""
    config = pip_config()
    index = _setting(config, "index-url") or _default_index()
    extra = shlex.split(_setting(config, "extra-index-url") or "")
    links = shlex.split(_setting(config, "find-links") or "")
    return [index, *extra], links


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []  # (href, text)
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href, self._text = dict(attrs).get("href"), []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
            self._href = None


def _timeout() -> float:
    for name in ("PIP_TIMEOUT", "PIP_DEFAULT_TIMEOUT"):
        try:
            return float(os.environ[name])
        except (KeyError, ValueError):
            continue
    return DEFAULT_TIMEOUT_S


def _context() -> ssl.SSLContext | None:
    cert = os.environ.get("PIP_CERT")
    return ssl.create_default_context(cafile=cert) if cert and Path(cert).is_file() else None


def _open(url: str):  # type: ignore[no-untyped-def]
    request = urllib.request.Request(url, headers={"Accept": ACCEPT, "User-Agent": "probebank"})
    return urllib.request.urlopen(request, timeout=_timeout(), context=_context())


def _page_links(url: str) -> list[tuple[str, str]]:
    """(filename, absolute URL) of every link on a simple page (or in a local folder)."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("", "file"):
        folder = Path(urllib.request.url2pathname(parsed.path))
        if folder.is_dir() and not (folder / "index.html").is_file():  # a find-links folder: its files
            return [(p.name, p.resolve().as_uri()) for p in sorted(folder.iterdir()) if p.is_file()]
        url = (folder / "index.html").resolve().as_uri() if folder.is_dir() else folder.resolve().as_uri()
    with _open(url) as response:
        text = response.read().decode("utf-8", errors="replace")
    parser = _Links()
    parser.feed(text)
    out = []
    for href, label in parser.links:
        target = urllib.parse.urljoin(url, href)
        name = label or urllib.parse.unquote(urllib.parse.urlparse(target).path.rsplit("/", 1)[-1])
        out.append((name, target))
    return out


def _not_listed(exc: Exception) -> bool:
    """The location answered, but has no page for this project (as opposed to being unreachable)."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code in (404, 410)
    return isinstance(exc, FileNotFoundError) or isinstance(getattr(exc, "reason", None), FileNotFoundError)


def find_file(pin: SourcePin) -> str:
    """The URL of the pinned file (pin.filename) in the first configured location that offers it."""
    filename, package = str(pin.filename), str(pin.package)
    indexes, links = locations()
    pages = [index.rstrip("/") + f"/{normalise(package)}/" for index in indexes] + links
    answered, failures = False, []
    for page in dict.fromkeys(pages):  # each location once, in order
        try:
            found = [url for name, url in _page_links(page) if name == filename]
        except (OSError, ValueError) as exc:  # unreachable, no page for this project (404), unreadable
            answered = answered or _not_listed(exc)
            failures.append(f"{page}: {'no such project' if _not_listed(exc) else getattr(exc, 'reason', exc)}")
            continue
        if found:
            return found[0]
        answered = True
        failures.append(f"{page}: no {filename}")
    if not answered:
        raise SourceError(f"could not fetch {package}=={pin.version} (pypi) and nothing is cached: "
                          f"{'; '.join(failures)}", field=f"sources.{pin.name}",
                          fix="check that the package registry is reachable (PIP_INDEX_URL, `pip config list`) "
                              "or pre-fill the cache, then retry")
    raise SourceError(f"no configured package index offers {filename} for {package}=={pin.version} "
                      f"({'; '.join(failures)})", field=f"sources.{pin.name}.filename",
                      fix="set `filename` to a file the registry lists for this version (e.g. the .tar.gz sdist)")


def download(pin: SourcePin, folder: Path) -> Path:
    """Download the pinned file into `folder`, refusing it early when the index's own hash differs from the pin."""
    if not pin.filename or Path(pin.filename).name != pin.filename or pin.filename in (".", ".."):
        raise SourceError(f"'{pin.filename}' is not a file name", field=f"sources.{pin.name}.filename",
                          fix="give the artifact's file name as the index lists it, e.g. names-0.3.0.tar.gz")
    url = find_file(pin)
    fragment = urllib.parse.urlparse(url).fragment
    listed = dict(urllib.parse.parse_qsl(fragment)).get("sha256")
    if listed and pin.sha256 and listed != pin.sha256:
        raise SourceError(f"{pin.package}=={pin.version}: the index lists {pin.filename} with sha256 {listed}, "
                          f"the card pins {pin.sha256}", field=f"sources.{pin.name}.sha256",
                          fix="if the new artifact is trusted, update the pin; otherwise check the registry")
    from tqdm.auto import tqdm

    target = Path(folder) / str(pin.filename)
    try:
        with _open(urllib.parse.urldefrag(url).url) as response, open(target, "wb") as out, \
                tqdm(total=int(response.headers.get("Content-Length") or 0) or None, unit="B", unit_scale=True,
                     desc=f"download {pin.filename}", leave=False, disable=None) as bar:  # None: off unless a tty
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
                bar.update(len(chunk))
    except (OSError, ValueError) as exc:
        raise SourceError(f"could not fetch {pin.package}=={pin.version} (pypi) and nothing is cached: "
                          f"downloading {url} failed ({getattr(exc, 'reason', exc)})", field=f"sources.{pin.name}",
                          fix="check that the package registry is reachable, then retry") from None
    return target
