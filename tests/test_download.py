"""Tests of kiko_data.download against a loopback HTTP server serving generated zips."""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import stat
import threading
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from kiko.data import download as download_module
from kiko.data.download import (
    ML1M_MD5,
    ML1M_URL,
    RELEASES,
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    download,
    extract_zip,
    main,
    published_md5,
)
from kiko.data.movielens.ml1m import ENCODING as ML1M_ENCODING
from kiko.data.movielens.ml1m import MOVIES_FILE, RATINGS_FILE, USERS_FILE

ZIP_NAME = "ml-1m.zip"


def _zip_bytes(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text.encode(ML1M_ENCODING))
    return buffer.getvalue()


ML1M_LIKE = _zip_bytes({
    "ml-1m/" + RATINGS_FILE: "1::1193::5::978300760\n",
    "ml-1m/" + USERS_FILE: "1::F::1::10::48067\n",
    "ml-1m/" + MOVIES_FILE: "2762::Misérables, Les (1995)::Drama\n",
})


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Server:
    """A loopback HTTP server serving `files` (URL path -> bytes) and counting requests."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def serve(self, path: str, body: bytes) -> str:
        self.files[path] = body
        return self.base + path

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    instance = _Server()
    yield instance
    if instance.thread.is_alive():
        instance.stop()


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listing(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


def test_download_extracts_and_verifies(server: _Server, tmp_path: Path) -> None:
    url = server.serve("/datasets/" + ZIP_NAME, ML1M_LIKE)
    dest = tmp_path / "data"
    result = download(dest, url=url, md5=_md5(ML1M_LIKE), sha256=_sha256(ML1M_LIKE))
    assert result == dest / "ml-1m"
    assert (dest / ZIP_NAME).read_bytes() == ML1M_LIKE
    assert (result / MOVIES_FILE).read_bytes() == "2762::Misérables, Les (1995)::Drama\n".encode(
        ML1M_ENCODING)
    assert _listing(dest) == {ZIP_NAME, "ml-1m", "ml-1m/" + RATINGS_FILE,
                              "ml-1m/" + USERS_FILE, "ml-1m/" + MOVIES_FILE}
    assert server.requests == ["/datasets/" + ZIP_NAME]


def test_download_without_extract_returns_zip(server: _Server, tmp_path: Path) -> None:
    url = server.serve("/" + ZIP_NAME, ML1M_LIKE)
    result = download(tmp_path, url=url, md5=None, sha256=_sha256(ML1M_LIKE), extract=False)
    assert result == tmp_path / ZIP_NAME
    assert _listing(tmp_path) == {ZIP_NAME}


def test_second_call_reuses_file_without_network(server: _Server, tmp_path: Path) -> None:
    url = server.serve("/" + ZIP_NAME, ML1M_LIKE)
    download(tmp_path, url=url, md5=_md5(ML1M_LIKE))
    server.stop()
    (tmp_path / "ml-1m" / RATINGS_FILE).unlink()
    assert download(tmp_path, url=url, md5=_md5(ML1M_LIKE)) == tmp_path / "ml-1m"
    assert (tmp_path / "ml-1m" / RATINGS_FILE).is_file()
    assert server.requests == ["/" + ZIP_NAME]


def test_existing_file_with_wrong_checksum_is_replaced(server: _Server, tmp_path: Path) -> None:
    url = server.serve("/" + ZIP_NAME, ML1M_LIKE)
    (tmp_path / ZIP_NAME).write_bytes(b"stale partial download")
    download(tmp_path, url=url, md5=_md5(ML1M_LIKE), extract=False)
    assert (tmp_path / ZIP_NAME).read_bytes() == ML1M_LIKE
    assert len(server.requests) == 1


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_corrupted_download_raises_and_leaves_nothing(
        server: _Server, tmp_path: Path, algorithm: str) -> None:
    url = server.serve("/" + ZIP_NAME, ML1M_LIKE[:-10] + b"corrupted!")
    expected = _md5(ML1M_LIKE) if algorithm == "md5" else _sha256(ML1M_LIKE)
    checksums = {"md5": None, "sha256": None, algorithm: expected}
    with pytest.raises(ChecksumError) as caught:
        download(tmp_path, url=url, **checksums)
    message = str(caught.value)
    assert url in message and expected in message
    actual = hashlib.new(algorithm, ML1M_LIKE[:-10] + b"corrupted!").hexdigest()
    assert actual in message
    assert (caught.value.expected, caught.value.actual) == (expected, actual)
    assert list(tmp_path.iterdir()) == []


def test_unsafe_member_refuses_to_extract_anything(server: _Server, tmp_path: Path) -> None:
    evil = _zip_bytes({"ml-1m/" + RATINGS_FILE: "1::2::3::4\n", "../evil": "owned"})
    url = server.serve("/" + ZIP_NAME, evil)
    dest = tmp_path / "dest"
    with pytest.raises(UnsafeArchiveError) as caught:
        download(dest, url=url, md5=_md5(evil))
    assert caught.value.member == "../evil" and "'../evil'" in str(caught.value)
    assert _listing(dest) == {ZIP_NAME}
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("member", ["/abs/evil", "a/../../evil", "..\\evil", "C:/evil"])
def test_extract_zip_refuses_escaping_names(tmp_path: Path, member: str) -> None:
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("ok.txt", "fine")
        out.writestr(zipfile.ZipInfo(member), "owned")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match="refusing to extract"):
        extract_zip(archive, dest)
    assert list(dest.iterdir()) == []


def test_extract_zip_refuses_symlinks(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    link = zipfile.ZipInfo("ml-1m/link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("ml-1m/" + RATINGS_FILE, "1::2::3::4\n")
        out.writestr(link, "/etc")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        extract_zip(archive, dest)
    assert list(dest.iterdir()) == []


def test_extract_zip_refuses_paths_through_existing_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "ml-1m").symlink_to(outside, target_is_directory=True)
    archive = tmp_path / "a.zip"
    archive.write_bytes(_zip_bytes({"ml-1m/" + RATINGS_FILE: "1::2::3::4\n"}))
    with pytest.raises(UnsafeArchiveError, match="resolves outside"):
        extract_zip(archive, dest)
    assert list(outside.iterdir()) == []


def test_extract_zip_returns_dest_for_root_files(tmp_path: Path) -> None:
    archive = tmp_path / "root.zip"
    archive.write_bytes(_zip_bytes({RATINGS_FILE: "1::2::3::4\n", USERS_FILE: ""}))
    dest = tmp_path / "dest"
    dest.mkdir()
    assert extract_zip(archive, dest) == dest
    assert (dest / RATINGS_FILE).read_text() == "1::2::3::4\n"


def test_unreachable_url_names_url_and_workaround(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    url = f"http://127.0.0.1:{_unused_port()}/{ZIP_NAME}"
    with pytest.raises(DownloadError) as caught:
        download(tmp_path, url=url, md5=ML1M_MD5, timeout=5)
    message = str(caught.value)
    assert message.startswith(f"could not reach {url}")
    assert f"put {ZIP_NAME} in {tmp_path} by hand and pass --data" in message
    assert list(tmp_path.iterdir()) == []


def test_http_error_names_url(server: _Server, tmp_path: Path) -> None:
    url = server.base + "/missing/" + ZIP_NAME
    with pytest.raises(DownloadError, match=f"download of {url} failed: HTTP 404"):
        download(tmp_path, url=url, md5=ML1M_MD5)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("md5, sha256, message", [
    (None, None, "no checksum given"),
    ("abc", None, "is not a 32-digit hex digest"),
    (None, "z" * 64, "is not a 64-digit hex digest"),
])
def test_bad_checksum_arguments_fail_before_network(
        tmp_path: Path, md5: str | None, sha256: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        download(tmp_path / "d", url="http://127.0.0.1:9/x.zip", md5=md5, sha256=sha256)
    assert not (tmp_path / "d").exists()


def test_defaults_are_grouplens_ml1m() -> None:
    assert ML1M_URL == "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
    assert ML1M_MD5 == "c4d9eecfca2ab87c1945afe126590906"
    assert download.__defaults__[:2] == (ML1M_URL, ML1M_MD5)


def test_main_prints_result(server: _Server, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    url = server.serve("/" + ZIP_NAME, ML1M_LIKE)
    main(["--dest", str(tmp_path), "--url", url, "--md5", _md5(ML1M_LIKE)])
    assert capsys.readouterr().out == f"{tmp_path / 'ml-1m'}\n"
    main(["--dest", str(tmp_path), "--url", url, "--sha256", _sha256(ML1M_LIKE), "--no-extract"])
    assert capsys.readouterr().out == f"{tmp_path / ZIP_NAME}\n"


def test_main_errors(server: _Server, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    url = server.serve("/" + ZIP_NAME, ML1M_LIKE)
    with pytest.raises(SystemExit) as caught:
        main(["--dest", str(tmp_path), "--url", url])
    assert caught.value.code == 2
    assert "kiko download: error: --url needs --md5 or --sha256" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        main(["--dest", str(tmp_path), "--url", url, "--md5", "0" * 32])
    assert "md5 mismatch" in str(caught.value.code)
    assert server.requests == ["/" + ZIP_NAME]


def test_main_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: kiko download")
    for option in ("--dest", "--release", "--url", "--md5", "--sha256", "--no-extract"):
        assert option in out


def test_releases_download_with_pinned_or_published_md5(
        server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(download_module, "GROUPLENS_URL", server.base + "/")
    csv_zip = _zip_bytes({"ml-32m/ratings.csv": "userId,movieId,rating,timestamp\n1,2,3.5,4\n"})
    server.serve("/ml-32m.zip", csv_zip)
    server.serve("/ml-32m.zip.md5", f"MD5 (ml-32m.zip) = {_md5(csv_zip)}\n".encode())
    main(["--dest", str(tmp_path / "a"), "--release", "ml-32m"])
    assert capsys.readouterr().out == f"{tmp_path / 'a' / 'ml-32m'}\n"
    assert server.requests == ["/ml-32m.zip.md5", "/ml-32m.zip"]
    server.serve("/ml-32m.zip.md5", f"{'f' * 32}  ml-32m.zip\n".encode())
    with pytest.raises(SystemExit, match="md5 mismatch"):
        main(["--dest", str(tmp_path / "b"), "--release", "ml-32m"])
    server.serve("/ml-25m.zip", csv_zip)  # not the real archive: its pinned md5 refuses it
    with pytest.raises(SystemExit, match=f"expected {RELEASES['ml-25m']}"):
        main(["--dest", str(tmp_path / "c"), "--release", "ml-25m"])
    assert not (tmp_path / "c" / "ml-25m.zip").exists()


def test_published_md5_errors(server: _Server) -> None:
    server.serve("/x.zip.md5", b"<html>no digest here</html>")
    with pytest.raises(DownloadError, match="does not hold one md5 digest"):
        published_md5(server.base + "/x.zip")
    with pytest.raises(DownloadError, match="could not read the published checksum"):
        published_md5(server.base + "/missing.zip")
