"""Download (against a local HTTP server on 127.0.0.1) and safe extraction."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sonodiff.data.download import download, extract_archive, fetch_source, sha256_file
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
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.files, srv.requests, srv.served, srv.statuses, srv.cuts, srv.ranges = {}, [], [], [], [], True
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
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


@pytest.mark.parametrize("case", sorted(BAD_ARCHIVES))
def test_bad_archives_are_refused(tmp_path, case):
    make, reason = BAD_ARCHIVES[case]
    archive = tmp_path / "in" / "bad.archive"
    archive.parent.mkdir()
    archive.write_bytes(make())
    with pytest.raises(InputError, match=reason) as err:
        fetch_source({"path": str(archive)}, tmp_path / "out" / "raw", tmp_path / "cache", progress=False)
    assert str(archive) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out" / "raw").exists()
    assert list((tmp_path / "out").iterdir()) == []               # no temporary folder left either
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/evil.txt").exists()


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
