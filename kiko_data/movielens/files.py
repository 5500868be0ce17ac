"""Files on any filesystem TFX reads (local, gs://, s3://, hdfs://, ram://), and zip members.

Every access goes through TFX's `fileio` (TensorFlow's gfile underneath), never `open()` or
`os.path`, so a path like `gs://bucket/ml-25m.zip` works wherever the local path does. Ratings
files are read in byte ranges aligned to lines, so no process ever holds a whole file.
"""

from __future__ import annotations

import hashlib
import posixpath
import shutil
import zipfile
from dataclasses import dataclass
from typing import IO, Iterator, NamedTuple, Optional

from tfx.dsl.io import fileio

_COPY_BYTES = 4 << 20
_SCAN_BYTES = 64 << 10
UTF8_BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"


def join(folder: str, name: str) -> str:
    """`folder/name` for local paths and URLs alike (os.path.join mangles nothing here either)."""
    return posixpath.join(folder, name) if folder else name


def parent(path: str) -> str:
    """The folder holding `path` (`gs://b/x/y.dat` -> `gs://b/x`)."""
    return posixpath.dirname(path.rstrip("/"))


def basename(path: str) -> str:
    return posixpath.basename(path.rstrip("/"))


def is_zip(path: str) -> bool:
    """A file whose name ends in .zip or whose first bytes are a zip header."""
    if path.lower().endswith(".zip"):
        return True
    with fileio.open(path, "rb") as f:
        return f.read(len(ZIP_MAGIC)) == ZIP_MAGIC


@dataclass(frozen=True)
class FileRef:
    """A file, or the member `member` of the zip archive at `path`."""

    path: str
    member: Optional[str] = None

    @property
    def name(self) -> str:
        """The file's base name (of the member for a zip member)."""
        return basename(self.member if self.member is not None else self.path)

    @property
    def display_name(self) -> str:
        """`archive.zip!member` for a zip member, else the path: used in error messages."""
        return f"{self.path}!{self.member}" if self.member is not None else self.path

    def open(self) -> IO[bytes]:
        """A binary stream over the file (or the decompressed member)."""
        if self.member is None:
            return fileio.open(self.path, "rb")
        archive = zipfile.ZipFile(fileio.open(self.path, "rb"))
        # The member stream keeps the archive's file object open until it is closed.
        return archive.open(self.member)

    def size(self) -> int:
        """Size in bytes (uncompressed size for a zip member)."""
        if self.member is None:
            return int(fileio.stat(self.path).length)
        with fileio.open(self.path, "rb") as f:
            return zipfile.ZipFile(f).getinfo(self.member).file_size

    def iter_lines(self) -> Iterator[bytes]:
        """The file's lines as bytes, streamed (each without its trailing newline)."""
        with self.open() as stream:
            pending = b""
            for block in iter(lambda: stream.read(_COPY_BYTES), b""):
                lines = (pending + block).split(b"\n")
                pending = lines.pop()
                yield from lines
            if pending:
                yield pending

    def head(self, n: int = 4) -> bytes:
        """The first `n` bytes (to recognise a BOM or a compressed file)."""
        with self.open() as stream:
            return stream.read(n)

    def sha256(self) -> str:
        """Hex SHA-256 of the content (of the stored bytes, for a zip member too)."""
        digest = hashlib.sha256()
        with self.open() as stream:
            for block in iter(lambda: stream.read(_COPY_BYTES), b""):
                digest.update(block)
        return digest.hexdigest()


def stage(ref: FileRef, folder: str) -> FileRef:
    """A plain file with `ref`'s content: zip members are decompressed (streaming) into `folder`.

    Byte ranges of a deflated member cannot be read without decompressing from its start, so
    a zipped ratings file is copied out once; a plain file is returned as is.
    """
    if ref.member is None:
        return ref
    fileio.makedirs(folder)
    target = join(folder, ref.name)
    with ref.open() as source, fileio.open(target, "wb") as out:
        shutil.copyfileobj(source, out, _COPY_BYTES)
    return FileRef(target)


class Chunk(NamedTuple):
    """A byte range of a ratings file; it holds the lines that *start* inside [start, end)."""

    index: int
    path: str
    start: int
    end: int


def plan_chunks(path: str, size: int, target_bytes: int) -> list[Chunk]:
    """Equal byte ranges covering a file of `size` bytes (boundaries need not fall on lines)."""
    if target_bytes < 1:
        raise ValueError(f"target_bytes must be at least 1, got {target_bytes}")
    count = max(1, -(-size // target_bytes))
    bounds = [size * i // count for i in range(count + 1)]
    return [Chunk(i, path, bounds[i], bounds[i + 1]) for i in range(count)]


def read_chunk_lines(chunk: Chunk) -> list[bytes]:
    """The lines starting inside the chunk's byte range, without newlines."""
    return split_lines(read_chunk_bytes(chunk))


def split_lines(data: bytes) -> list[bytes]:
    """The lines of `data` (read_chunk_bytes's), without newlines."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def read_chunk_bytes(chunk: Chunk) -> bytes:
    """The bytes of the lines starting inside the chunk's byte range, newlines included.

    A line belongs to the range holding its first byte, so adjacent ranges read every line of
    the file exactly once whatever the boundaries. Only the range (plus the tail of its last
    line) is read.
    """
    with fileio.open(chunk.path, "rb") as f:
        position = chunk.start
        if chunk.start > 0:
            # Start after the first newline at or after start - 1: that is where the first line
            # beginning inside the range starts.
            f.seek(chunk.start - 1)
            position = chunk.start - 1 + _skip_past_newline(f)
        if position >= chunk.end:
            return b""
        f.seek(position)
        data = f.read(chunk.end - position)
        if data and not data.endswith(b"\n"):
            data += _rest_of_line(f)
    return data


def _skip_past_newline(f) -> int:
    """Bytes read up to and including the next newline (or to the end of the file)."""
    skipped = 0
    while True:
        block = f.read(_SCAN_BYTES)
        if not block:
            return skipped
        newline = block.find(b"\n")
        if newline >= 0:
            return skipped + newline + 1
        skipped += len(block)


def _rest_of_line(f) -> bytes:
    """The bytes up to and including the next newline (or to the end of the file)."""
    parts = []
    while True:
        block = f.read(_SCAN_BYTES)
        if not block:
            break
        newline = block.find(b"\n")
        if newline >= 0:
            parts.append(block[:newline + 1])
            break
        parts.append(block)
    return b"".join(parts)
