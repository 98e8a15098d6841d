"""Fetch a raw dataset: resumable, verified download and safe archive extraction.

A dataset's ``source`` config gives exactly one of

- ``url`` + ``sha256``: the archive is downloaded into a cache folder through a ``.part`` file
  that later attempts resume with an HTTP ``Range`` request; network errors are retried with
  exponential backoff (``backoff * 2**attempt`` seconds); the finished file is renamed into place
  only once its SHA-256 matches;
- ``path``: a local archive (verified against ``sha256`` when given) or an extracted folder.

Archives (zip, tar, tar.gz/bz2/xz) are checked entry by entry before anything is written:
absolute names, ``..`` components, links (symbolic or hard) and device files are refused, so
nothing can land outside the target folder. ``subdir`` selects a folder inside the archive.
The target folder appears whole or not at all (:func:`sonodiff.io.atomic_dir`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import shutil
import stat
import tarfile
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from dataclasses import dataclass
from typing import IO, Callable, Mapping
from urllib.parse import unquote, urlparse

import requests
from tqdm import tqdm

from sonodiff.errors import InputError
from sonodiff.io import atomic_dir

log = logging.getLogger(__name__)

CHUNK = 1 << 20
#: Errors worth another attempt (the server or the network may recover).
RETRYABLE = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def sha256_file(path: str | Path, chunk: int = CHUNK) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: str | Path, expected: str | None, where: str | Path | None = None) -> None:
    """Raise :class:`InputError` when ``path``'s SHA-256 differs from ``expected`` (if given)."""
    if not expected:
        return
    actual = sha256_file(path)
    if actual.lower() != expected.lower():
        raise InputError(where or path, f"sha256 mismatch: expected {expected.lower()}, got {actual}")


class _RetryableHTTP(Exception):
    """A server error (5xx, 429) that another attempt may get past."""


def download(url: str, dest: str | Path, sha256: str | None = None, *, retries: int = 5,
             backoff: float = 1.0, timeout: float = 60.0, chunk: int = 1 << 16,
             progress: bool = True, session: requests.Session | None = None) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` and verifying ``sha256``.

    Attempt ``a`` (0-based) that fails on the network waits ``backoff * 2**a`` seconds before
    the next; the ``.part`` file keeps what arrived, and the next request asks for the rest
    (``Range: bytes=<size>-``). A server that ignores ``Range`` (status 200) restarts the file.
    ``dest`` is written only when complete and verified; on a checksum mismatch the bad file is
    deleted and :class:`InputError` names the URL.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():
        try:
            verify_sha256(dest, sha256, where=url)
            log.info("%s already downloaded", dest)
            return dest
        except InputError:
            dest.unlink()
    part = dest.with_name(dest.name + ".part")
    session = session or requests.Session()
    last_error: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            wait = backoff * 2 ** (attempt - 1)
            log.warning("download of %s failed (%s); retry %d/%d in %.1f s",
                        url, last_error, attempt, retries, wait)
            time.sleep(wait)
        try:
            if _fetch_into(session, url, part, timeout, chunk, progress):
                break
        except (RETRYABLE + (_RetryableHTTP,)) as err:
            last_error = err
    else:
        raise InputError(url, f"download failed after {retries + 1} attempts ({last_error})")
    try:
        verify_sha256(part, sha256, where=url)
    except InputError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return dest


def _fetch_into(session: requests.Session, url: str, part: Path, timeout: float, chunk: int,
                progress: bool) -> bool:
    """One attempt: append the missing bytes to ``part``. True when the file is complete."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with session.get(url, headers=headers, stream=True, timeout=timeout) as resp:
        if resp.status_code == 416 and have:
            # Nothing left to send: the part file already holds the whole resource.
            return True
        if resp.status_code >= 500 or resp.status_code == 429:
            raise _RetryableHTTP(f"HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise InputError(url, f"HTTP {resp.status_code} {resp.reason}")
        if resp.status_code == 206:
            start = _content_range_start(resp.headers.get("Content-Range", ""))
            if start != have:
                raise InputError(url, f"server resumed at byte {start}, asked for {have}")
            mode = "ab"
        else:
            have, mode = 0, "wb"
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with open(part, mode) as handle, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                               desc=part.name, disable=not progress) as bar:
            for block in resp.iter_content(chunk_size=chunk):
                handle.write(block)
                bar.update(len(block))
    if total is not None and part.stat().st_size != total:
        raise requests.exceptions.ChunkedEncodingError(
            f"got {part.stat().st_size} of {total} bytes")
    return True


def _content_range_start(header: str) -> int:
    match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", header.strip())
    return int(match.group(1)) if match else -1


# ---------------------------------------------------------------------------- extraction

def archive_kind(path: str | Path) -> str:
    """``"zip"`` or ``"tar"`` from the file's content; :class:`InputError` otherwise."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        with tarfile.open(path, "r:*") as tar:
            tar.next()
        return "tar"
    except (tarfile.TarError, EOFError, OSError, zlib.error):
        pass
    raise InputError(path, "not a readable zip or tar archive (corrupt or truncated?)")


def _check_name(archive: Path, name: str) -> PurePosixPath:
    """The entry's relative path, or :class:`InputError` when it could escape the target."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        raise InputError(archive, f"entry {name!r} has an absolute path")
    rel = PurePosixPath(posix)
    if any(part == ".." for part in rel.parts):
        raise InputError(archive, f"entry {name!r} escapes the target folder (..)")
    return rel


def _inside(target: Path, rel: PurePosixPath) -> Path:
    out = (target / rel).resolve()
    if out != target.resolve() and target.resolve() not in out.parents:
        raise InputError(target, f"entry {str(rel)!r} escapes the target folder")
    return out


def _zip_entries(path: Path, zf: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    entries = []
    for info in zf.infolist():
        rel = _check_name(path, info.filename)
        ftype = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip records no file type
        if ftype and ftype not in (stat.S_IFREG, stat.S_IFDIR):
            kind = "a symbolic link" if ftype == stat.S_IFLNK else "a special file"
            raise InputError(path, f"entry {info.filename!r} is {kind}")
        entries.append((info, rel))
    return entries


def _tar_entries(path: Path, tar: tarfile.TarFile) -> list[tuple[tarfile.TarInfo, PurePosixPath]]:
    entries = []
    for member in tar.getmembers():
        rel = _check_name(path, member.name)
        if member.issym() or member.islnk():
            raise InputError(path, f"entry {member.name!r} is a link")
        if not (member.isfile() or member.isdir()):
            raise InputError(path, f"entry {member.name!r} is a device or special file")
        entries.append((member, rel))
    return entries


def _copy_stream(src, dst: Path, size: int, archive: Path, name: str) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(dst, "wb") as out:
        for block in iter(lambda: src.read(CHUNK), b""):
            out.write(block)
            written += len(block)
    if written != size:
        raise InputError(archive, f"entry {name!r} is truncated ({written} of {size} bytes)")


@dataclass(frozen=True)
class _Member:
    """One checked archive entry: its path inside the target, kind, size and a reader."""

    rel: PurePosixPath
    is_dir: bool
    size: int
    name: str
    open: Callable[[], IO[bytes]]


def _zip_members(path: Path, zf: zipfile.ZipFile) -> list[_Member]:
    return [_Member(rel, info.is_dir(), info.file_size, info.filename, functools.partial(zf.open, info))
            for info, rel in _zip_entries(path, zf)]


def _tar_members(path: Path, tar: tarfile.TarFile) -> list[_Member]:
    def opener(member: tarfile.TarInfo) -> IO[bytes]:
        src = tar.extractfile(member)
        if src is None:
            raise InputError(path, f"entry {member.name!r} cannot be read")
        return src

    return [_Member(rel, member.isdir(), member.size, member.name, functools.partial(opener, member))
            for member, rel in _tar_entries(path, tar)]


def extract_archive(path: str | Path, target: str | Path, progress: bool = True) -> None:
    """Extract a zip or tar archive into the existing folder ``target``, refusing unsafe entries.

    Every entry is checked before the first byte is written. Raises :class:`InputError` naming
    the archive for a corrupt or truncated archive and for absolute, ``..``, link and device
    entries.
    """
    path, target = Path(path), Path(target)
    kind = archive_kind(path)
    try:
        with (zipfile.ZipFile(path) if kind == "zip" else tarfile.open(path, "r:*")) as archive:
            entries = _zip_members(path, archive) if kind == "zip" else _tar_members(path, archive)
            for member in tqdm(entries, desc=f"extract {path.name}", disable=not progress):
                out = _inside(target, member.rel)
                if member.is_dir:
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                with member.open() as src:
                    _copy_stream(src, out, member.size, path, member.name)
    except InputError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError, zlib.error) as err:
        raise InputError(path, f"corrupt or truncated archive ({err})") from err
    except OSError as err:
        if err.errno is None:  # gzip/lzma/bz2 stream errors carry no errno
            raise InputError(path, f"corrupt or truncated archive ({err})") from err
        raise


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy a folder, hard-linking files where the file system allows (no link is followed out)."""
    def link_or_copy(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, symlinks=False, copy_function=link_or_copy, dirs_exist_ok=True)


def _select_subdir(root: Path, subdir: str, where: str | Path) -> Path:
    if not subdir:
        return root
    rel = _check_name(Path(str(where)), subdir.strip("/"))
    chosen = _inside(root, rel)
    if not chosen.is_dir():
        raise InputError(where, f"subdir {subdir!r} not found")
    return chosen


def _cache_name(url: str, sha256: str | None) -> str:
    name = Path(unquote(urlparse(url).path)).name or "download"
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return f"{sha256[:16]}-{name}" if sha256 else name


def fetch_source(source: Mapping, target: str | Path, cache: str | Path, *, where: str = "source",
                 progress: bool = True, **download_args) -> Path:
    """Materialise a dataset's raw files in the folder ``target`` from its ``source`` config.

    ``source`` holds ``url`` (+ ``sha256``) or ``path`` (archive or folder), and optionally
    ``subdir``. Archives are downloaded into ``cache`` (kept, so a failed job resumes).
    ``target`` appears atomically; on any error it is absent.
    """
    target, cache = Path(target), Path(cache)
    subdir = source.get("subdir", "") or ""
    sha = source.get("sha256")
    if "url" in source:
        archive = download(source["url"], cache / _cache_name(source["url"], sha), sha,
                           progress=progress, **download_args)
        where_archive: Path | str = archive
    elif "path" in source:
        archive = Path(source["path"]).expanduser()
        where_archive = archive
        if not archive.exists():
            raise InputError(archive, f"not found ({where}.path)")
        if archive.is_file():
            verify_sha256(archive, sha, where=archive)
    else:
        raise InputError(where, "give url (+ sha256) or path")

    with atomic_dir(target) as tmp:
        if archive.is_dir():
            _copy_tree(_select_subdir(archive, subdir, archive), tmp)
        else:
            staging = tmp / ".extract"
            staging.mkdir()
            extract_archive(archive, staging, progress=progress)
            chosen = _select_subdir(staging, subdir, where_archive)
            for child in list(chosen.iterdir()):
                os.replace(child, tmp / child.name)
            shutil.rmtree(staging)
        if not any(tmp.iterdir()):
            raise InputError(where_archive, "no files")
    return target

