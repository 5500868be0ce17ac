"""Fetch a MovieLens release from GroupLens: checksum-verified, atomic, safely extracted.

`RELEASES` holds the md5 GroupLens publishes next to each fixed release's archive
(`<release>.zip.md5`). For releases without a pinned value (ml-32m, and the "latest" archives,
which GroupLens regenerates) the md5 is read from that published `.md5` file at download time.
The data is never committed (GroupLens licence); machines without internet access need the zip
put in place by hand, then passed to the pipeline with --data.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import posixpath
import stat
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Optional, Sequence, Union

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/"
# GroupLens' published md5 of each release's zip (from <release>.zip.md5), None where it is read
# from that file at download time.
RELEASES = {
    "ml-100k": "0e33842e24a9c977be4e0107933c0723",
    "ml-1m": "c4d9eecfca2ab87c1945afe126590906",
    "ml-10m": "ce571fd55effeba0271552578f2648bd",
    "ml-20m": "cd245b17a1ae2cc31bb14903e1204af3",
    "ml-25m": "6b51fb2759a8657d3bfcbfc42b592ada",
    "ml-32m": None,
    "ml-latest-small": None,
    "ml-latest": None,
}
DEFAULT_RELEASE = "ml-1m"
ML1M_URL = f"{GROUPLENS_URL}ml-1m.zip"
ML1M_MD5 = RELEASES["ml-1m"]

_CHUNK_BYTES = 1 << 20
_HEX_LENGTHS = {"md5": 32, "sha256": 64}


class ChecksumError(ValueError):
    """The downloaded bytes do not have the expected checksum."""

    def __init__(self, url: str, algorithm: str, expected: str, actual: str) -> None:
        self.url = url
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{algorithm} mismatch for {url}: expected {expected}, got {actual}; "
            "the download was deleted")


class UnsafeArchiveError(ValueError):
    """A zip member that would land outside the destination folder (or is a symlink)."""

    def __init__(self, archive: str, member: str, reason: str) -> None:
        self.archive = archive
        self.member = member
        self.reason = reason
        super().__init__(f"refusing to extract {archive}: member {member!r} {reason}")


class DownloadError(OSError):
    """The URL could not be fetched (no network, HTTP error, truncated transfer)."""


def _normalize_checksums(md5: Optional[str], sha256: Optional[str]) -> dict[str, str]:
    """Validate the expected hex digests and return them by algorithm name."""
    expected = {name: value.strip().lower()
                for name, value in (("md5", md5), ("sha256", sha256)) if value is not None}
    if not expected:
        raise ValueError("no checksum given: pass md5 or sha256 to verify the download")
    for name, value in expected.items():
        if len(value) != _HEX_LENGTHS[name] or value.strip("0123456789abcdef"):
            raise ValueError(f"{name} {value!r} is not a {_HEX_LENGTHS[name]}-digit hex digest")
    return expected


def _file_digests(path: Path, algorithms: Sequence[str]) -> dict[str, str]:
    """Hex digests of a file, read in chunks."""
    hashes = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK_BYTES), b""):
            for digest in hashes.values():
                digest.update(chunk)
    return {name: digest.hexdigest() for name, digest in hashes.items()}


def _first_mismatch(expected: dict[str, str], actual: dict[str, str]
                    ) -> Optional[tuple[str, str, str]]:
    """(algorithm, expected, actual) of the first digest that differs, else None."""
    for name, value in expected.items():
        if actual[name] != value:
            return name, value, actual[name]
    return None


def _archive_name(url: str) -> str:
    """The file name the URL's path ends with."""
    name = posixpath.basename(urllib.parse.urlsplit(url).path)
    if not name:
        raise ValueError(f"cannot tell a file name from the URL {url}")
    return name


def _fetch(url: str, target: Path, expected: dict[str, str], timeout: float) -> None:
    """Stream `url` to a temp file next to `target`, verify it, then rename it into place."""
    hashes = {name: hashlib.new(name) for name in expected}
    descriptor, temp_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(descriptor, "wb") as out:
            received = 0
            # build_opener reads the proxy environment at call time, unlike the cached urlopen.
            with urllib.request.build_opener().open(url, timeout=timeout) as response:
                declared = response.headers.get("Content-Length")
                for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                    out.write(chunk)
                    received += len(chunk)
                    for digest in hashes.values():
                        digest.update(chunk)
            if declared is not None and declared.isdigit() and int(declared) != received:
                raise DownloadError(
                    f"download of {url} was cut short: got {received} of {declared} bytes")
            out.flush()
            os.fsync(out.fileno())
        mismatch = _first_mismatch(
            expected, {name: digest.hexdigest() for name, digest in hashes.items()})
        if mismatch is not None:
            raise ChecksumError(url, *mismatch)
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except urllib.error.HTTPError as error:
        temp.unlink(missing_ok=True)
        raise DownloadError(
            f"download of {url} failed: HTTP {error.code} {error.reason}") from error
    except http.client.HTTPException as error:
        temp.unlink(missing_ok=True)
        raise DownloadError(f"download of {url} was cut short ({error!r})") from error
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        temp.unlink(missing_ok=True)
        reason = getattr(error, "reason", error)
        raise DownloadError(
            f"could not reach {url} ({reason}); this machine may have no internet access: "
            f"put {target.name} in {target.parent} by hand and pass --data") from error
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _member_problem(info: zipfile.ZipInfo, root: Path) -> Optional[str]:
    """Why extracting this member would be unsafe, or None if it stays inside `root`."""
    name = info.filename
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (name[:1].isalpha() and name[1:2] == ":"):
        return "has an absolute path"
    if ".." in parts:
        return "escapes the destination with '..'"
    resolved = (root / name).resolve()
    if resolved != root and root not in resolved.parents:
        return f"resolves outside {root}"
    return None


def extract_zip(zip_path: Union[str, os.PathLike], dest_dir: Union[str, os.PathLike]) -> Path:
    """Extract a zip into dest_dir after checking every member stays inside it.

    Nothing is written when any member is unsafe. Returns the archive's single top-level
    folder under dest_dir (ml-1m/) if it has one, else dest_dir.
    """
    dest = Path(dest_dir)
    root = dest.resolve()
    with zipfile.ZipFile(zip_path) as archive:
        infos = archive.infolist()
        for info in infos:
            problem = _member_problem(info, root)
            if problem is not None:
                raise UnsafeArchiveError(os.fspath(zip_path), info.filename, problem)
        archive.extractall(root)
    tops = {info.filename.replace("\\", "/").split("/", 1)[0] for info in infos}
    nested = all("/" in info.filename.replace("\\", "/") for info in infos)
    if len(tops) == 1 and nested:
        return dest / tops.pop()
    return dest


def release_url(release: str) -> str:
    """The GroupLens address of a release's zip."""
    if release not in RELEASES:
        raise ValueError(f"unknown MovieLens release {release!r}; known: {', '.join(RELEASES)}")
    return f"{GROUPLENS_URL}{release}.zip"


def published_md5(url: str, timeout: float = 60) -> str:
    """The md5 in the `.md5` file GroupLens publishes beside `url` (`MD5 (x.zip) = hex` or
    `hex  x.zip`)."""
    sidecar = url + ".md5"
    try:
        with urllib.request.build_opener().open(sidecar, timeout=timeout) as response:
            text = response.read(4096).decode("ascii", "replace")
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise DownloadError(f"could not read the published checksum {sidecar} "
                            f"({getattr(error, 'reason', error)})") from error
    words = [w.strip("() ") for w in text.replace("=", " ").split()]
    digests = [w.lower() for w in words if len(w) == 32 and not w.strip("0123456789abcdefABCDEF")]
    if len(digests) != 1:
        raise DownloadError(f"{sidecar} does not hold one md5 digest: {text[:200]!r}")
    return digests[0]


def download(
    dest_dir: Union[str, os.PathLike],
    url: str = ML1M_URL,
    md5: Optional[str] = ML1M_MD5,
    sha256: Optional[str] = None,
    extract: bool = True,
    timeout: float = 60,
) -> Path:
    """Download `url` into dest_dir (reusing a copy whose checksum matches) and extract it.

    Every given checksum is verified; pass md5=None when checking another file by sha256 only.
    Returns the extracted folder, or the zip itself when extract is False.
    """
    expected = _normalize_checksums(md5, sha256)
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / _archive_name(url)
    reusable = target.is_file() and _first_mismatch(
        expected, _file_digests(target, list(expected))) is None
    if not reusable:
        _fetch(url, target, expected, timeout)
    if not extract:
        return target
    return extract_zip(target, dest)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command line: download (and extract) a release, then print the resulting path."""
    parser = argparse.ArgumentParser(
        prog="kiko download",
        description=(
            "Download a MovieLens release from GroupLens into DEST, verify its checksum, extract "
            "it safely and print the extracted folder (or the zip with --no-extract). A zip "
            "already in DEST with the right checksum is reused without network access. Without "
            "internet access, put the zip in DEST by hand instead."))
    parser.add_argument("--dest", required=True, help="folder to download into and extract in")
    parser.add_argument("--release", choices=list(RELEASES), default=DEFAULT_RELEASE,
                        help=f"the GroupLens release (default {DEFAULT_RELEASE}); its published "
                             "md5 is checked (read from <release>.zip.md5 where none is pinned)")
    parser.add_argument("--url", help="another archive URL instead of the release's (needs "
                                      "--md5 or --sha256)")
    parser.add_argument("--md5", help="expected md5 (default: the release's published md5)")
    parser.add_argument("--sha256", help="expected sha256, checked as well when given")
    parser.add_argument("--no-extract", action="store_true",
                        help="keep the verified zip without extracting it")
    parser.add_argument("--timeout", type=float, default=60,
                        help="network timeout in seconds (default: 60)")
    args = parser.parse_args(argv)
    if args.url and args.md5 is None and args.sha256 is None:
        parser.error("--url needs --md5 or --sha256")
    url = args.url or release_url(args.release)
    try:
        md5 = args.md5
        if md5 is None and args.url is None:
            md5 = RELEASES[args.release] or published_md5(url, args.timeout)
        result = download(args.dest, url=url, md5=md5, sha256=args.sha256,
                          extract=not args.no_extract, timeout=args.timeout)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        sys.exit(f"{parser.prog}: error: {error}")
    print(result)


if __name__ == "__main__":
    main()
