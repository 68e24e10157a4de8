"""Downloading weight files into a cache, checked against the SHA-256 prefix in their name (as
torch hub names them), and remembering which cached files were checked."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import urllib.request
from pathlib import Path

from cvtasks.errors import WeightsError
from cvtasks.releases import HASH_IN_NAME

_HASH_IN_NAME = HASH_IN_NAME
DOWNLOAD_TIMEOUT_S = 20.0


def download(url: str, dest: Path, *, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Download ``url`` to ``dest`` atomically, checking the SHA-256 prefix in the file name.

    Raises ``OSError`` (network) or :class:`WeightsError` (hash mismatch).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    match = _HASH_IN_NAME.search(dest.name)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".partial", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0)
            done = 0
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if sys.stderr.isatty() and total:
                    print(f"\r  {dest.name}: {done * 100 // total}%", end="", file=sys.stderr)
        if sys.stderr.isatty() and total:
            print(file=sys.stderr)
        if match and not digest.hexdigest().startswith(match.group(1)):
            raise WeightsError(
                f"downloaded file {url} does not match its hash {match.group(1)} "
                f"(got {digest.hexdigest()[: len(match.group(1))]}); try again"
            )
        os.replace(tmp_name, dest)
        if match:  # hashed while downloading: the first load need not hash it again
            _write_stamp(dest, match.group(1))
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def verify_cached(path: Path, model: str) -> None:
    """Check a cached download against the SHA-256 prefix in its name (as torch hub names
    them). The result is remembered in ``<file>.verified`` (size, mtime, hash), so the file
    is hashed again only when it changes."""
    match = _HASH_IN_NAME.search(path.name)
    if match is None:
        return
    with contextlib.suppress(OSError):
        if _stamp_path(path).read_text(encoding="utf-8").strip() == _stamp_key(
            path, match.group(1)
        ):
            return
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    if not digest.hexdigest().startswith(match.group(1)):
        raise WeightsError(
            f"cached weights {path} do not match the hash in their name ({match.group(1)}, got "
            f"{digest.hexdigest()[: len(match.group(1))]}): the download is corrupt or the file "
            f"was replaced. Delete it and run `cvtasks models pull {model}`."
        )
    _write_stamp(path, match.group(1))


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stamp_key(path: Path, prefix: str) -> str:
    info = path.stat()
    return f"{info.st_size}:{info.st_mtime_ns}:{prefix}"


def _write_stamp(path: Path, prefix: str) -> None:
    """Remember that ``path`` matched its hash prefix, for as long as its size and mtime hold."""
    with contextlib.suppress(OSError):  # a read-only cache is fine: we just hash again next time
        _stamp_path(path).write_text(_stamp_key(path, prefix), encoding="utf-8")
