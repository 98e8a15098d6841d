"""Download (against a local HTTP server on 127.0.0.1) and safe extraction.

Every malformed input is built here, small: bombs are a few KiB of zeros measured against caps
passed small (one, the default caps' case, is a 64 KiB zip of 64 MiB of zeros, never written out).
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import re
import struct
import tarfile
import threading
import time
import warnings
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath

import pytest

from sonodiff.data import download as dl
from sonodiff.data.download import ArchiveCaps, download, extract_archive, fetch_source, sha256_file
from sonodiff.errors import InputError

PAYLOAD = os.urandom(200_000)


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; honours ``Range: bytes=N-`` when ``server.ranges``; can fail on cue."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        if srv.statuses:
            self.send_response(srv.statuses.pop(0))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        match = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
        if match and srv.ranges:
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = srv.cuts.pop(0) if srv.cuts else None
        # Recorded before writing: the client may finish reading (and the test look) before this
        # thread runs again.
        if cut is not None:  # promise the whole body, send part of it, drop the connection
            srv.served.append(cut)
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        srv.served.append(len(body))
        if srv.pace:  # slowly, in ten pieces: a second client arrives while this one downloads
            step = -(-len(body) // 10)
            for start in range(0, len(body), step):
                self.wfile.write(body[start:start + step])
                self.wfile.flush()
                time.sleep(srv.pace)
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.files, srv.requests, srv.served, srv.statuses, srv.cuts, srv.ranges = {}, [], [], [], [], True
    srv.pace = 0.0
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


FAST = {"backoff": 0.0, "progress": False, "timeout": 10}


# ------------------------------------------------------------------------------- download

def test_download_resumes_after_dropped_connection(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    server.cuts = [70_000]
    out = download(f"{server.url}/a.bin", tmp_path / "a.bin", _sha(PAYLOAD), retries=3, chunk=4096, **FAST)
    assert out.read_bytes() == PAYLOAD
    assert not (tmp_path / "a.bin.part").exists()
    (_, first), (_, second) = server.requests
    assert first is None
    start = int(re.match(r"bytes=(\d+)-", second).group(1))
    assert 0 < start <= 70_000
    assert server.served[1] == len(PAYLOAD) - start      # only the missing bytes came again


def test_download_resumes_part_file_from_earlier_run(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD[:12_345])
    download(f"{server.url}/a.bin", tmp_path / "a.bin", _sha(PAYLOAD), **FAST)
    assert server.requests == [("/a.bin", "bytes=12345-")]
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_server_without_range_support_restarts(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    server.ranges = False
    (tmp_path / "a.bin.part").write_bytes(b"x" * 5000)       # garbage that must not be kept
    download(f"{server.url}/a.bin", tmp_path / "a.bin", _sha(PAYLOAD), **FAST)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_complete_part_file_gets_416(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD)
    download(f"{server.url}/a.bin", tmp_path / "a.bin", _sha(PAYLOAD), **FAST)
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    with pytest.raises(InputError, match="sha256 mismatch") as err:
        download(f"{server.url}/a.bin", tmp_path / "a.bin", "0" * 64, **FAST)
    assert str(err.value).startswith(f"{server.url}/a.bin: ")
    assert list(tmp_path.iterdir()) == []


def test_server_errors_are_retried_with_backoff(server, tmp_path, monkeypatch):
    import sonodiff.data.download as dl

    waits = []
    monkeypatch.setattr(dl.time, "sleep", waits.append)
    server.files["/a.bin"] = PAYLOAD
    server.statuses = [503, 500, 429]
    download(f"{server.url}/a.bin", tmp_path / "a.bin", _sha(PAYLOAD), retries=3, backoff=0.5,
             progress=False, timeout=10)
    assert len(server.requests) == 4
    assert waits == [0.5, 1.0, 2.0]                       # backoff * 2**attempt


def test_retries_exhausted(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    server.statuses = [500] * 5
    with pytest.raises(InputError, match="download failed after 3 attempts"):
        download(f"{server.url}/a.bin", tmp_path / "a.bin", _sha(PAYLOAD), retries=2, **FAST)
    assert not (tmp_path / "a.bin").exists()


def test_not_found_is_not_retried(server, tmp_path):
    with pytest.raises(InputError, match="HTTP 404"):
        download(f"{server.url}/missing.zip", tmp_path / "m.zip", None, retries=4, **FAST)
    assert len(server.requests) == 1


def _download_in_process(url, dest, sha, barrier, results):
    """One job of the concurrency test (a spawned process)."""
    barrier.wait(timeout=60)
    try:
        results.put(("ok", sha256_file(download(url, dest, sha, **FAST))))
    except Exception as err:  # reported to the test, which fails on it
        results.put(("error", repr(err)))


def test_two_jobs_downloading_one_file_share_it(server, tmp_path):
    """The second job waits on the lock, then uses the first one's verified file."""
    server.files["/a.bin"] = PAYLOAD
    server.pace = 0.04                                   # ~0.4 s per download
    dest = tmp_path / "cache" / "a.bin"
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    args = (f"{server.url}/a.bin", dest, _sha(PAYLOAD), barrier, results)
    jobs = [ctx.Process(target=_download_in_process, args=args) for _ in range(2)]
    for job in jobs:
        job.start()
    try:
        outcomes = [results.get(timeout=60) for _ in jobs]
    finally:
        for job in jobs:
            job.join(timeout=10)
            if job.is_alive():
                job.terminate()
    assert outcomes == [("ok", _sha(PAYLOAD))] * 2
    assert sha256_file(dest) == _sha(PAYLOAD)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.bin"]   # no .part, no .lock left
    assert len(server.requests) == 1                     # the second job downloaded nothing


def test_lock_is_exclusive_and_leaves_no_file(tmp_path):
    dest = tmp_path / "a.bin"
    order = []

    def second():
        with dl._exclusive(dest):
            order.append("second")

    with dl._exclusive(dest):
        other = threading.Thread(target=second)
        other.start()
        time.sleep(0.1)
        order.append("first")
    other.join(timeout=10)
    assert order == ["first", "second"] and list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------- archives

FILES = {"ds/data/a.txt": b"alpha", "ds/data/sub/b.txt": b"beta" * 100, "ds/README": b"readme"}


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar(files: dict[str, bytes], mode: str = "w:gz", extra: list[tarfile.TarInfo] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_fetch_url_extracts_subdir(server, tmp_path, kind):
    data = _zip(FILES) if kind == "zip" else _tar(FILES, "w" if kind == "tar" else "w:gz")
    server.files[f"/ds.{kind}"] = data
    source = {"url": f"{server.url}/ds.{kind}", "sha256": _sha(data), "subdir": "ds/data"}
    target = fetch_source(source, tmp_path / "raw", tmp_path / "cache", progress=False, backoff=0.0)
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()) == ["a.txt", "sub/b.txt"]
    assert (target / "sub" / "b.txt").read_bytes() == b"beta" * 100
    assert len(list((tmp_path / "cache").iterdir())) == 1  # the verified archive is kept for reruns
    fetch_source(source, tmp_path / "raw", tmp_path / "cache", progress=False)
    assert len(server.requests) == 1


def test_fetch_local_folder_and_archive(tmp_path):
    folder = tmp_path / "mine" / "inner"
    folder.mkdir(parents=True)
    (folder / "x.png").write_bytes(b"png")
    fetch_source({"path": str(tmp_path / "mine"), "subdir": "inner"}, tmp_path / "raw1", tmp_path / "c", progress=False)
    assert (tmp_path / "raw1" / "x.png").read_bytes() == b"png"
    archive = tmp_path / "ds.tar.gz"
    archive.write_bytes(_tar(FILES))
    fetch_source({"path": str(archive)}, tmp_path / "raw2", tmp_path / "c", progress=False)
    assert (tmp_path / "raw2" / "ds" / "README").read_bytes() == b"readme"
    with pytest.raises(InputError, match="sha256 mismatch"):
        fetch_source({"path": str(archive), "sha256": "1" * 64}, tmp_path / "raw3", tmp_path / "c", progress=False)
    with pytest.raises(InputError, match="subdir 'nope' not found"):
        fetch_source({"path": str(archive), "subdir": "nope"}, tmp_path / "raw4", tmp_path / "c", progress=False)
    assert not (tmp_path / "raw3").exists() and not (tmp_path / "raw4").exists()


def _link(name, kind, target="ds/README"):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _zip_symlink() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ok.txt", b"ok")
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


BAD_ARCHIVES = {
    "zip-dotdot": (lambda: _zip({"ok.txt": b"ok", "../evil.txt": b"x"}), "escapes the target"),
    "zip-absolute": (lambda: _zip({"ok.txt": b"ok", "/tmp/evil.txt": b"x"}), "absolute path"),
    "zip-symlink": (_zip_symlink, "symbolic link"),
    "tar-dotdot": (lambda: _tar({"ok.txt": b"ok", "a/../../evil.txt": b"x"}), "escapes the target"),
    "tar-absolute": (lambda: _tar({"/etc/evil.txt": b"x"}), "absolute path"),
    "tar-symlink": (lambda: _tar(FILES, extra=[_link("ds/link", tarfile.SYMTYPE, "/etc/passwd")]), "is a link"),
    "tar-hardlink": (lambda: _tar(FILES, extra=[_link("ds/hard", tarfile.LNKTYPE)]), "is a link"),
    "tar-device": (lambda: _tar(FILES, extra=[_link("ds/dev", tarfile.CHRTYPE, "")]), "device or special"),
    "tar-fifo": (lambda: _tar(FILES, extra=[_link("ds/fifo", tarfile.FIFOTYPE, "")]), "device or special"),
    "tar.gz-truncated": (lambda: _tar({"big.bin": os.urandom(50_000)})[:-20_000], "corrupt or truncated"),
    "tar-truncated": (lambda: _tar({"big.bin": os.urandom(50_000)}, "w")[:30_000], "truncated"),
    "zip-truncated": (lambda: _zip(FILES)[:-30], "not a readable zip or tar"),
    "not-an-archive": (lambda: b"hello, I am text", "not a readable zip or tar"),
}


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _refused(tmp_path: Path, data: bytes, reason: str, caps: ArchiveCaps = dl.DEFAULT_CAPS) -> str:
    """Fetch an archive holding ``data``: InputError matching ``reason``, nothing written. The message."""
    archive = tmp_path / "in" / "bad.archive"
    archive.parent.mkdir()
    archive.write_bytes(data)
    out = tmp_path / "out"
    out.mkdir()
    (out / "other.txt").write_text("not ours")
    before = _listing(tmp_path)
    with pytest.raises(InputError, match=reason) as err:
        fetch_source({"path": str(archive)}, out / "raw", tmp_path / "cache", progress=False, caps=caps)
    assert str(err.value).startswith(f"{archive}: ") and "\n" not in str(err.value)
    assert _listing(tmp_path) == before            # no target, no staging folder, nothing beside
    assert not Path("/tmp/evil.txt").exists()
    return str(err.value)


@pytest.mark.parametrize("case", sorted(BAD_ARCHIVES))
def test_bad_archives_are_refused(tmp_path, case):
    make, reason = BAD_ARCHIVES[case]
    _refused(tmp_path, make(), reason)


def _zip_list(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", method) as zf:
        warnings.simplefilter("ignore")             # zipfile warns of a duplicate name, and writes it
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def _tar_list(entries: list[tuple[str, bytes | None]], mode: str = "w:gz") -> bytes:
    """A tar of ``(name, data)`` in this order; ``data`` None makes a folder."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip_of_zeros(size: int, name: str = "zeros.bin", method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf, zf.open(name, "w") as member:
        for start in range(0, size, 1 << 20):
            member.write(bytes(min(1 << 20, size - start)))
    return buf.getvalue()


def _zip_overlapping() -> bytes:
    """Two central directory entries pointing at one local header (the overlap of zip bombs)."""
    data = bytearray(_zip({"a": b"A" * 1000, "b": b"B" * 1000}))
    second = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)
    data[second + 42:second + 46] = struct.pack("<I", 0)      # local header offset of "b" := that of "a"
    return bytes(data)


SMALL = 1 << 20  # ratio caps from 1 MiB on, so that bombs stay a few KiB
#: name -> (archive, caps, reason): each must name the entry.
CAPPED = {
    "zip-ratio": (lambda: _zip_of_zeros(2 * SMALL), ArchiveCaps(ratio_floor=SMALL),
                  r"entry 'zeros.bin' takes the archive's expansion to \d+ fold .*ArchiveCaps.ratio"),
    "zip-member-ratio": (lambda: _zip_list([("ok.txt", os.urandom(4000)), ("zeros.bin", bytes(2 * SMALL))],
                                           zipfile.ZIP_BZIP2),
                         ArchiveCaps(ratio_floor=SMALL, ratio=10**9),
                         r"entry 'zeros.bin' expands \d+ fold .*ArchiveCaps.member_ratio"),
    "tar.gz-ratio": (lambda: _tar_list([("zeros.bin", bytes(2 * SMALL))]), ArchiveCaps(ratio_floor=SMALL),
                     "entry 'zeros.bin' takes the archive's expansion .*ArchiveCaps.ratio"),
    "zip-total": (lambda: _zip_list([("a.bin", os.urandom(600)), ("b.bin", os.urandom(600))]),
                  ArchiveCaps(total_bytes=1000), "entry 'b.bin' takes the unpacked size to 1200 bytes.*total_bytes"),
    "tar-total": (lambda: _tar_list([("a.bin", os.urandom(600)), ("b.bin", os.urandom(600))], "w"),
                  ArchiveCaps(total_bytes=1000), "entry 'b.bin' takes the unpacked size to 1200 bytes.*total_bytes"),
    "zip-members": (lambda: _zip(FILES), ArchiveCaps(members=2), "entry 'ds/README' is one more than the cap of 2"),
    "tar-members": (lambda: _tar(FILES), ArchiveCaps(members=2), "entry 'ds/README' is one more than the cap of 2"),
}
#: name -> (archive, reason): malformed layouts, refused under the default caps.
CONFLICTS = {
    "zip-twice": (lambda: _zip_list([("ds/a.txt", b"first"), ("ds/a.txt", b"second")]),
                  "entry 'ds/a.txt' appears twice"),
    "tar-twice": (lambda: _tar_list([("ds/a.txt", b"first"), ("ds/a.txt", b"second")]),
                  "entry 'ds/a.txt' appears twice"),
    "tar-file-then-folder": (lambda: _tar_list([("ds/a", b"file"), ("ds/a", None)]),
                             "entry 'ds/a' is both a file and a folder"),
    "tar-folder-then-file": (lambda: _tar_list([("ds/a", None), ("ds/a/x", b"x"), ("ds/a", b"file")]),
                             "entry 'ds/a' is both a file and a folder"),
    "tar-file-then-inside": (lambda: _tar_list([("ds/a", b"file"), ("ds/a/b.txt", b"x")]),
                             "entry 'ds/a/b.txt' lies inside 'ds/a', which is a file"),
    "zip-file-and-folder": (lambda: _zip_list([("ds/a", b"file"), ("ds/a/", b"")]), "entry 'ds/a/' is both a file"),
    "tar-dot-file": (lambda: _tar_list([("./", b"x")]), "entry './' is a file without a name"),
    "zip-overlap": (_zip_overlapping, "entry 'b' overlaps the data of entry 'a'"),
}


@pytest.mark.parametrize("case", sorted(CAPPED))
def test_archive_past_a_cap_is_refused_before_writing(tmp_path, case, monkeypatch):
    make, caps, reason = CAPPED[case]
    monkeypatch.setattr(dl, "_copy_stream", lambda *a: pytest.fail("wrote before every header was checked"))
    _refused(tmp_path, make(), reason, caps)


@pytest.mark.parametrize("case", sorted(CONFLICTS))
def test_conflicting_entries_are_refused(tmp_path, case):
    make, reason = CONFLICTS[case]
    _refused(tmp_path, make(), reason)


def test_default_caps_refuse_a_64_kib_zip_of_64_mib(tmp_path):
    data = _zip_of_zeros(64 << 20)
    assert len(data) < 70_000
    _refused(tmp_path, data, r"entry 'zeros.bin' takes the archive's expansion to 1\d{3} fold.*cap of 200")


def _patch_zip_size(data: bytes, size: int) -> bytes:
    """Rewrite the uncompressed size of a one-member zip in its local and central headers."""
    data = bytearray(data)
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + 22:local + 26] = data[central + 24:central + 28] = struct.pack("<I", size)
    return bytes(data)


@pytest.mark.parametrize("size", [1000, 80_000])
def test_zip_header_lying_about_the_size_is_refused(tmp_path, size):
    message = _refused(tmp_path, _patch_zip_size(_zip({"a.bin": b"A" * 50_000}), size),
                       "entry 'a.bin' (is corrupt or truncated|is truncated)")
    assert "a.bin" in message


def test_stream_longer_than_its_header_stops_at_the_first_byte_too_many(tmp_path):
    member = dl._Member(PurePosixPath("a.bin"), False, 10, "a.bin", lambda: None)

    class Counting(io.BytesIO):
        asked = 0

        def read(self, n=-1):
            Counting.asked += n
            return super().read(n)

    with pytest.raises(InputError, match="entry 'a.bin' expands beyond its declared size of 10 bytes"):
        dl._copy_stream(Counting(b"x" * 10_000), tmp_path / "a", member, tmp_path / "t.zip", budget=10**9)
    assert Counting.asked <= 11                            # never decompressed past the limit
    with pytest.raises(InputError, match="entry 'a.bin' expands beyond the cap on the total size"):
        dl._copy_stream(io.BytesIO(b"x" * 10), tmp_path / "b", member, tmp_path / "t.zip", budget=5)


def test_entries_named_like_staging_folders_are_plain_entries(tmp_path):
    """The staging folder's name is random: no entry can collide with it."""
    archive = tmp_path / "ds.zip"
    archive.write_bytes(_zip({".extract/a.txt": b"a", ".staging-x/b.txt": b"b", "c.txt": b"c"}))
    out = tmp_path / "out"
    out.mkdir()
    fetch_source({"path": str(archive)}, out / "raw", tmp_path / "cache", progress=False)
    assert _listing(out / "raw") == [".extract", ".extract/a.txt", ".staging-x", ".staging-x/b.txt", "c.txt"]
    assert _listing(out) == ["raw"] + [f"raw/{p}" for p in _listing(out / "raw")]
    fetch_source({"path": str(archive), "subdir": ".extract"}, out / "sub", tmp_path / "cache", progress=False)
    assert (out / "sub" / "a.txt").read_bytes() == b"a" and sorted(p.name for p in out.iterdir()) == ["raw", "sub"]


def test_failed_extraction_leaves_an_earlier_target_untouched(tmp_path):
    target = tmp_path / "raw"
    target.mkdir()
    (target / "old.txt").write_text("old")
    archive = tmp_path / "bad.zip"
    archive.write_bytes(_zip_list([("a", b"1"), ("a", b"2")]))
    with pytest.raises(InputError, match="appears twice"):
        extract_archive(archive, target, progress=False)
    assert _listing(tmp_path) == ["bad.zip", "raw", "raw/old.txt"]
    archive.write_bytes(_zip({"new.txt": b"new"}))
    extract_archive(archive, target, progress=False)      # a good one replaces it whole
    assert _listing(target) == ["new.txt"]


# ------------------------------------------------------------------------------- local folders

def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src" / "ds"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    return src


def _fetch_folder(tmp_path: Path, src: Path, **source) -> Path:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return fetch_source({"path": str(src), **source}, out / "raw", tmp_path / "cache", progress=False)


def test_links_inside_the_folder_are_copied_as_their_targets(tmp_path):
    src = _source(tmp_path)
    (src / "link.txt").symlink_to("sub/b.txt")
    (src / "sub_again").symlink_to(src / "sub")
    target = _fetch_folder(tmp_path, src)
    assert _listing(target) == ["a.txt", "link.txt", "sub", "sub/b.txt", "sub_again", "sub_again/b.txt"]
    assert not any(p.is_symlink() for p in target.rglob("*"))
    assert (target / "link.txt").read_text() == "b" and (target / "sub_again" / "b.txt").read_text() == "b"


def test_folder_given_through_a_link_is_copied(tmp_path):
    src = _source(tmp_path)
    (src / "inner_link.txt").symlink_to(src / "a.txt")     # absolute, through the real path
    alias = tmp_path / "alias"
    alias.symlink_to(src)
    assert _listing(_fetch_folder(tmp_path, alias, subdir="sub")) == ["b.txt"]
    assert (tmp_path / "out" / "raw" / "b.txt").read_text() == "b"


def _outside(src: Path) -> str:
    secret = src.parent.parent / "secret.txt"
    secret.write_text("secret")
    (src / "sub" / "escape.txt").symlink_to(secret)
    return "sub/escape.txt: link points outside the source folder"


def _loop(src: Path) -> str:
    (src / "x").symlink_to("y")
    (src / "y").symlink_to("x")
    return "x: link loop"


def _ancestor(src: Path) -> str:
    (src / "sub" / "up").symlink_to("..")
    return "sub/up: link loop .*a folder it lies in"


def _dangling(src: Path) -> str:
    (src / "gone.txt").symlink_to("nowhere.txt")
    return "gone.txt: broken link"


def _fifo(src: Path) -> str:
    os.mkfifo(src / "pipe")
    return "pipe: a device or special file"


@pytest.mark.parametrize("make", [_outside, _loop, _ancestor, _dangling, _fifo], ids=lambda f: f.__name__[1:])
def test_bad_links_in_a_local_folder_are_refused(tmp_path, make):
    src = _source(tmp_path)
    reason = make(src)
    out = tmp_path / "out"
    out.mkdir()
    before = _listing(tmp_path)
    with pytest.raises(InputError, match=reason) as err:
        _fetch_folder(tmp_path, src)
    assert str(err.value).startswith(str(src)) and "\n" not in str(err.value)
    assert _listing(tmp_path) == before                    # no target, no staging folder


def test_corrupt_zip_member_crc(tmp_path):
    data = bytearray(_zip({"a.txt": b"A" * 5000}))
    pos = data.find(b"a.txt") + len(b"a.txt") + 3        # inside the compressed data
    data[pos] ^= 0xFF
    archive = tmp_path / "bad.zip"
    archive.write_bytes(bytes(data))
    target = tmp_path / "t"
    target.mkdir()
    with pytest.raises(InputError, match="corrupt or truncated|truncated"):
        extract_archive(archive, target, progress=False)


def test_sha256_file(tmp_path):
    (tmp_path / "f").write_bytes(PAYLOAD)
    assert sha256_file(tmp_path / "f") == _sha(PAYLOAD)
