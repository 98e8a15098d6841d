"""Fetch a raw dataset: resumable, verified download and safe archive extraction.

A dataset's ``source`` config gives exactly one of

- ``url`` + ``sha256``: the archive is downloaded into a cache folder through a ``.part`` file
  that later attempts resume with an HTTP ``Range`` request; network errors are retried with
  exponential backoff (``backoff * 2**attempt`` seconds); the finished file is renamed into place
  only once its SHA-256 matches. Jobs that fetch the same URL share one cache file: each holds an
  exclusive lock on ``<cache file>.lock`` (``fcntl.flock``) while downloading, verifying and
  renaming, so a second job waits and then finds the finished, verified file;
- ``path``: a local archive (verified against ``sha256`` when given) or an extracted folder. A
  folder is copied without following any link out of it: a link that resolves inside the folder
  is copied as its target, one that points outside, dangles or loops is refused.

Archives (zip, tar, tar.gz/bz2/xz) are checked entry by entry before anything is written:
absolute names, ``..`` components, links (symbolic or hard), device files, a name given twice or
as both a file and a folder, and zip members whose data overlap are refused, so nothing lands
outside the target folder and nothing is silently replaced. :class:`ArchiveCaps` bounds what an
archive may expand to (total bytes, entries, compression ratio overall and per zip member): the
caps are checked on the headers before the first byte is written, and the bytes actually written
are counted while streaming, since a header may lie. ``subdir`` selects a folder inside the
archive.

Every source is materialised in one staging folder beside the target (``.staging-<random>``, a
name that no archive entry can predict) and renamed into place only when complete; on any error
the staging folder is removed and the target is left as it was. Every refusal is an
:class:`~sonodiff.errors.InputError` naming the archive (and the entry) or the link.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import logging
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Callable, Iterator, Mapping
from urllib.parse import unquote, urlparse

import requests
from tqdm import tqdm

from sonodiff.errors import InputError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
#: Errors worth another attempt (the server or the network may recover).
RETRYABLE = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
#: Errors of a corrupt or truncated archive (gzip and bz2 raise OSErrors without errno, see below).
CORRUPT = (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError)

#: Default caps on what an archive may expand to; :class:`ArchiveCaps` says why these values.
MAX_TOTAL_BYTES = 200 * 2**30
MAX_MEMBERS = 1_000_000
MAX_RATIO = 200
MAX_MEMBER_RATIO = 2_000
RATIO_FLOOR_BYTES = 16 * 2**20
#: Bytes of a zip local file header before the name (APPNOTE 4.3.7).
ZIP_LOCAL_HEADER = 30


@dataclass(frozen=True)
class ArchiveCaps:
    """What an archive may expand to. Raise one with a keyword: ``ArchiveCaps(total_bytes=2**40)``.

    - ``total_bytes`` (200 GiB): the sum of the entries' sizes. CAMUS unpacks to about 10 GB and
      SegThy's 18.6 GB ``US_data.zip`` to a few tens of GB; 200 GiB leaves room for a dataset
      several times larger and still stops an archive from filling a scratch disk.
    - ``members`` (1,000,000): the number of entries. CAMUS holds about 10^4 files and BUSI about
      1,600; a hundredfold margin still bounds the inodes and the per-entry work.
    - ``ratio`` (200): the entries' total size over the archive's file size. Ultrasound images are
      speckled or already compressed (``.nii.gz``, PNG), so a dataset archive expands 1-10 fold;
      a zip bomb expands about 1,000 fold (one deflate stream of zeros) to millions fold
      (overlapping or nested members).
    - ``member_ratio`` (2,000): one zip member's size over its compressed size. Deflate cannot pass
      about 1,032:1, and label volumes stored uncompressed in a zip (SegThy's ``.nii`` masks:
      mostly zeros) do reach 450-950:1, so a lower cap would refuse real data; this one stops
      the bzip2 and LZMA members that expand ten thousand to millions fold.
    - ``ratio_floor`` (16 MiB): the two ratio caps apply only to an expansion (of the whole
      archive, of one member) beyond this size, which cannot harm a disk: a small archive of
      small, very compressible files is fine.
    """

    total_bytes: int = MAX_TOTAL_BYTES
    members: int = MAX_MEMBERS
    ratio: float = MAX_RATIO
    member_ratio: float = MAX_MEMBER_RATIO
    ratio_floor: int = RATIO_FLOOR_BYTES


DEFAULT_CAPS = ArchiveCaps()


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


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``<path>.lock``; other jobs wait for it.

    The lock file is removed while still locked. A job that opened it before then holds a lock
    on a file that no longer has the name, sees so (the name is gone or is another inode) and
    locks afresh. The kernel drops the lock when its process dies, so a killed job blocks nobody.
    """
    lock = path.with_name(path.name + ".lock")
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            current = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            current = False
        except BaseException:
            os.close(fd)
            raise
        if current:
            break
        os.close(fd)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)


def download(url: str, dest: str | Path, sha256: str | None = None, *, retries: int = 5,
             backoff: float = 1.0, timeout: float = 60.0, chunk: int = 1 << 16,
             progress: bool = True, session: requests.Session | None = None) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` and verifying ``sha256``.

    Attempt ``a`` (0-based) that fails on the network waits ``backoff * 2**a`` seconds before
    the next; the ``.part`` file keeps what arrived, and the next request asks for the rest
    (``Range: bytes=<size>-``). A server that ignores ``Range`` (status 200) restarts the file.
    ``dest`` is written only when complete and verified; on a checksum mismatch the bad file is
    deleted and :class:`InputError` names the URL. The whole of it runs under an exclusive lock
    on ``dest.lock``: a second job fetching the same file waits, then uses the verified ``dest``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(dest):
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
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError):
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


class _HeaderCheck:
    """The checks on an archive's headers, fed one entry at a time (a tar is read as a stream).

    Refuses a name given twice (a folder listed again excepted) or as both a file and a folder
    (also implicitly: ``a`` a file, ``a/b`` an entry), a file without a name, and any entry past
    a cap of :class:`ArchiveCaps`; each error names the entry.
    """

    def __init__(self, archive: Path, caps: ArchiveCaps):
        self.archive, self.caps = archive, caps
        self.archive_bytes = max(archive.stat().st_size, 1)
        self.count = self.total = 0
        self.is_dir: dict[PurePosixPath, bool] = {PurePosixPath("."): True}

    def add(self, rel: PurePosixPath, name: str, is_dir: bool, size: int, packed: int | None = None) -> None:
        """One entry: its path, name, kind, size and (zip) compressed size."""
        caps, where = self.caps, self.archive
        self.count += 1
        if self.count > caps.members:
            raise InputError(where, f"entry {name!r} is one more than the cap of {caps.members} entries "
                             "(ArchiveCaps.members)")
        self._claim(rel, name, is_dir)
        if is_dir:
            return
        if packed is not None and size > caps.ratio_floor and size > caps.member_ratio * max(packed, 1):
            raise InputError(where, f"entry {name!r} expands {size / max(packed, 1):.0f} fold ({packed} to "
                             f"{size} bytes), above the cap of {caps.member_ratio} (ArchiveCaps.member_ratio)")
        self.total += size
        if self.total > caps.total_bytes:
            raise InputError(where, f"entry {name!r} takes the unpacked size to {self.total} bytes, above the "
                             f"cap of {caps.total_bytes} (ArchiveCaps.total_bytes)")
        if self.total > caps.ratio_floor and self.total > caps.ratio * self.archive_bytes:
            raise InputError(where, f"entry {name!r} takes the archive's expansion to "
                             f"{self.total / self.archive_bytes:.0f} fold ({self.archive_bytes} to {self.total} "
                             f"bytes), above the cap of {caps.ratio} (ArchiveCaps.ratio)")

    def _claim(self, rel: PurePosixPath, name: str, is_dir: bool) -> None:
        if rel == PurePosixPath(".") and not is_dir:
            raise InputError(self.archive, f"entry {name!r} is a file without a name")
        for parent in rel.parents:
            if self.is_dir.setdefault(parent, True) is False:
                raise InputError(self.archive, f"entry {name!r} lies inside {str(parent)!r}, which is a file")
        before = self.is_dir.get(rel)
        if before is None or (before and is_dir):  # a folder may be listed again (or after its files)
            self.is_dir[rel] = is_dir
        elif before == is_dir:
            raise InputError(self.archive, f"entry {name!r} appears twice")
        else:
            raise InputError(self.archive, f"entry {name!r} is both a file and a folder")


@dataclass(frozen=True)
class _Member:
    """One checked archive entry: its path inside the target, kind, size and a reader."""

    rel: PurePosixPath
    is_dir: bool
    size: int
    name: str
    open: Callable[[], IO[bytes]]


def _zip_members(path: Path, zf: zipfile.ZipFile, check: _HeaderCheck) -> list[_Member]:
    members = []
    infos = zf.infolist()
    for info in infos:
        rel = _check_name(path, info.filename)
        ftype = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip records no file type
        if ftype and ftype not in (stat.S_IFREG, stat.S_IFDIR):
            kind = "a symbolic link" if ftype == stat.S_IFLNK else "a special file"
            raise InputError(path, f"entry {info.filename!r} is {kind}")
        check.add(rel, info.filename, info.is_dir(), info.file_size, info.compress_size)
        members.append(_Member(rel, info.is_dir(), info.file_size, info.filename, functools.partial(zf.open, info)))
    # A member's local header and data must end before the next member's header begins; the
    # bombs that reach millions fold point many headers at one shared stream.
    ordered = sorted(infos, key=lambda info: info.header_offset)
    for first, then in zip(ordered, ordered[1:]):
        if then.header_offset < first.header_offset + ZIP_LOCAL_HEADER + first.compress_size:
            raise InputError(path, f"entry {then.filename!r} overlaps the data of entry {first.filename!r}")
    return members


def _tar_members(path: Path, tar: tarfile.TarFile, check: _HeaderCheck) -> list[_Member]:
    def opener(member: tarfile.TarInfo) -> IO[bytes]:
        src = tar.extractfile(member)
        if src is None:
            raise InputError(path, f"entry {member.name!r} cannot be read")
        return src

    members = []
    for member in tar:  # header by header: a cap stops the scan before the data behind it is read
        rel = _check_name(path, member.name)
        if member.issym() or member.islnk():
            raise InputError(path, f"entry {member.name!r} is a link")
        if not (member.isfile() or member.isdir()):
            raise InputError(path, f"entry {member.name!r} is a device or special file")
        check.add(rel, member.name, member.isdir(), member.size)
        members.append(_Member(rel, member.isdir(), member.size, member.name, functools.partial(opener, member)))
    return members


def _copy_stream(src: IO[bytes], dst: Path, member: _Member, archive: Path, budget: int) -> int:
    """Write ``src`` to the new file ``dst``; returns the bytes written.

    The bytes are counted as they arrive: a stream longer than ``member.size`` (its header
    lied) or than ``budget`` (what the total cap has left) stops at the first byte too many.
    """
    limit = min(member.size, budget)
    written = 0
    with open(dst, "xb") as out:
        while block := src.read(min(CHUNK, limit + 1 - written)):
            written += len(block)
            if written > limit:
                reason = (f"expands beyond its declared size of {member.size} bytes" if written > member.size
                          else "expands beyond the cap on the total size (ArchiveCaps.total_bytes)")
                raise InputError(archive, f"entry {member.name!r} {reason}")
            out.write(block)
    if written != member.size:
        raise InputError(archive, f"entry {member.name!r} is truncated ({written} of {member.size} bytes)")
    return written


def _is_corrupt(err: BaseException) -> bool:
    # gzip/bz2 stream errors are OSErrors without errno; a real OSError (disk full) is not bad input
    return isinstance(err, CORRUPT) or (isinstance(err, OSError) and err.errno is None)


def _extract_into(path: Path, folder: Path, caps: ArchiveCaps, progress: bool) -> None:
    """Check every header of archive ``path``, then extract it into the empty folder ``folder``."""
    kind = archive_kind(path)
    check = _HeaderCheck(path, caps)
    try:
        with (zipfile.ZipFile(path) if kind == "zip" else tarfile.open(path, "r:*")) as archive:
            entries = _zip_members(path, archive, check) if kind == "zip" else _tar_members(path, archive, check)
            budget = caps.total_bytes
            for member in tqdm(entries, desc=f"extract {path.name}", disable=not progress):
                out = _inside(folder, member.rel)
                try:
                    if member.is_dir:
                        out.mkdir(parents=True, exist_ok=True)
                        continue
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with member.open() as src:
                        budget -= _copy_stream(src, out, member, path, budget)
                except (FileExistsError, NotADirectoryError, IsADirectoryError) as err:
                    # names equal on this file system only (case-insensitive ones)
                    raise InputError(path, f"entry {member.name!r} collides with another entry") from err
                except Exception as err:
                    if not _is_corrupt(err):
                        raise
                    raise InputError(path, f"entry {member.name!r} is corrupt or truncated ({err})") from err
    except InputError:
        raise
    except Exception as err:
        if not _is_corrupt(err):
            raise
        raise InputError(path, f"corrupt or truncated archive ({err})") from err


@contextlib.contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """A new empty folder ``.staging-<random>`` beside ``target``, removed on leaving, whatever happened."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish(folder: Path, target: Path) -> None:
    """Rename the complete ``folder`` (the staging folder or one inside it) to ``target``."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(folder, 0o777 & ~mask)  # mkdtemp makes 0700
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)
    os.replace(folder, target)


def extract_archive(path: str | Path, target: str | Path, progress: bool = True, *,
                    caps: ArchiveCaps = DEFAULT_CAPS) -> None:
    """Extract a zip or tar archive to the folder ``target``, refusing unsafe entries.

    Every header is checked (names, kinds, duplicates, ``caps``) before the first byte is
    written, and the bytes written are counted against the headers and ``caps``. ``target``
    appears whole (replacing an earlier one) or is left as it was. Raises :class:`InputError`
    naming the archive (and the entry) for a corrupt or truncated archive and for every refusal.
    """
    path, target = Path(path), Path(target)
    with _staging(target) as staging:
        _extract_into(path, staging, caps, progress)
        _publish(staging, target)


def _link_target(link: Path, root: Path) -> Path:
    """Where the symbolic link ``link`` resolves; :class:`InputError` unless inside ``root``."""
    try:
        real = link.resolve(strict=True)
    except FileNotFoundError as err:
        raise InputError(link, f"broken link (to {os.readlink(link)})") from err
    except (RuntimeError, OSError) as err:  # Python < 3.13 reports a loop as RuntimeError
        if isinstance(err, OSError) and err.errno != errno.ELOOP:
            raise
        raise InputError(link, "link loop (following it never reaches a file or folder)") from err
    if real != root and root not in real.parents:
        raise InputError(link, f"link points outside the source folder {root} (to {real})")
    return real


def _copy_tree(src: Path, dst: Path, root: Path) -> None:
    """Copy the folder ``src`` into the empty folder ``dst``, following no link out of ``root``.

    ``src`` and ``root`` are resolved, ``src`` inside ``root``. Files are hard-linked where the file
    system allows. A link that resolves inside ``root`` is copied as its target (a folder link is
    followed, unless it leads back to a folder on its own path); a link that points outside
    ``root``, dangles or loops, and a device or special file, is an :class:`InputError` naming it.
    """
    def walk(folder: Path, out: Path, path_above: frozenset[Path]) -> None:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        for entry in entries:
            here = Path(entry.path)
            real = _link_target(here, root) if entry.is_symlink() else here
            mode = real.stat().st_mode
            if stat.S_ISDIR(mode):
                if real in path_above:
                    raise InputError(here, f"link loop (the link leads back to {real}, a folder it lies in)")
                (out / entry.name).mkdir()
                walk(real, out / entry.name, path_above | {real})
            elif stat.S_ISREG(mode):
                _link_or_copy(real, out / entry.name)
            else:
                raise InputError(here, "a device or special file")

    walk(src, dst, frozenset({src}))


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


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
                 progress: bool = True, caps: ArchiveCaps = DEFAULT_CAPS, **download_args) -> Path:
    """Materialise a dataset's raw files in the folder ``target`` from its ``source`` config.

    ``source`` holds ``url`` (+ ``sha256``) or ``path`` (archive or folder), and optionally
    ``subdir``. Archives are downloaded into ``cache`` (kept, so a failed job resumes) and
    extracted under ``caps``. ``target`` appears atomically; on any error it is left as it was.
    """
    target, cache = Path(target), Path(cache)
    subdir = source.get("subdir", "") or ""
    sha = source.get("sha256")
    if "url" in source:
        archive = download(source["url"], cache / _cache_name(source["url"], sha), sha,
                           progress=progress, **download_args)
    elif "path" in source:
        archive = Path(source["path"]).expanduser()
        if not archive.exists():
            raise InputError(archive, f"not found ({where}.path)")
        if archive.is_file():
            verify_sha256(archive, sha, where=archive)
    else:
        raise InputError(where, "give url (+ sha256) or path")

    with _staging(target) as staging:
        if archive.is_dir():
            _copy_tree(_select_subdir(archive, subdir, archive).resolve(), staging, archive.resolve())
            chosen = staging
        else:
            _extract_into(archive, staging, caps, progress)
            chosen = _select_subdir(staging, subdir, archive)
        if not any(chosen.iterdir()):
            raise InputError(archive, "no files")
        _publish(chosen, target)
    return target
