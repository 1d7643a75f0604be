"""Every file swinref writes or reads goes through here: atomic writes, bounded reads.

Writes: the bytes go to a fresh temporary file in the destination's directory (created
exclusively, so a planted file or symlink of that name is never followed), are flushed and synced,
and the file is then renamed onto the destination, and the directory synced. A reader therefore sees
the old file or the whole new one, never a part, whatever moment the writer is killed at. An
existing destination is kept unless the caller says ``overwrite=True``; without it the rename is
exclusive too (a hard link, then the temporary name is removed), so two writers cannot both win.

Reads: only regular files are read. The file is opened without blocking (a FIFO cannot hang the
reader), checked with ``fstat`` on the open descriptor (a symlink to ``/dev/zero`` is seen as the
character device it is) and its size is checked against a cap before a byte is read.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import struct
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

__all__ = [
    "GoldenFileError",
    "parse_safetensors_header",
    "read_safetensors_file",
    "InputFileError",
    "OutputExistsError",
    "atomic_write",
    "inside",
    "open_regular",
    "read_regular",
    "require_regular",
]

GIB = 1 << 30
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: the mode a plain open() would give new files


class InputFileError(ValueError):
    """A file that cannot be read as asked: not a regular file, too large, or unreadable."""


class GoldenFileError(ValueError):
    """A file is not a readable swinref golden file: truncated, not safetensors, or foreign."""


class OutputExistsError(FileExistsError):
    """The destination exists and the caller did not ask to overwrite it."""


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


@contextlib.contextmanager
def open_regular(
    path: str | os.PathLike, *, what: str = "file", max_bytes: int | None = None
) -> Iterator[IO[bytes]]:
    """Open ``path`` for binary reading if it is a regular file no larger than ``max_bytes``.

    Raises FileNotFoundError for a missing path and :class:`InputFileError` for anything else that
    is not a plain, readable, bounded file. The check is made on the open descriptor, so it holds
    for the file actually read even if the path is swapped meanwhile.
    """
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise InputFileError(f"{what} {path} is a directory, expected a regular file") from None
    except OSError as e:
        raise InputFileError(f"cannot open {what} {path}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputFileError(f"{what} {path} is {_kind(st.st_mode)}, expected a regular file")
        if max_bytes is not None and st.st_size > max_bytes:
            raise InputFileError(
                f"{what} {path} has {st.st_size:,} bytes, more than the {max_bytes:,} allowed for it"
            )
        if hasattr(os, "O_NONBLOCK"):
            # back to blocking reads: a regular file never blocks, and buffered reads expect it
            os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f


def read_regular(path: str | os.PathLike, *, what: str = "file", max_bytes: int = 64 * GIB) -> bytes:
    """The whole content of a regular file of at most ``max_bytes`` bytes (see :func:`open_regular`)."""
    with open_regular(path, what=what, max_bytes=max_bytes) as f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(size + 1)
    if len(data) > size:
        raise InputFileError(f"{what} {os.fspath(path)} grew while it was read")
    return data


def require_regular(path: str | os.PathLike, *, what: str = "file", max_bytes: int | None = None) -> int:
    """Check that ``path`` is a readable regular file within ``max_bytes``; returns its size."""
    with open_regular(path, what=what, max_bytes=max_bytes) as f:
        return os.fstat(f.fileno()).st_size


SAFETENSORS_HEADER_CAP = 100 << 20  # bytes; the safetensors format's own readers refuse larger headers
MAX_FILE_BYTES = 64 << 30  # a golden file of swin_l at batch 64 in float64 is about 20 GiB


def _header_length(first8: bytes, size: int, path: str) -> int:
    not_st = f"{path} is not a safetensors file"
    if len(first8) < 8:
        raise GoldenFileError(f"{not_st}: it has {len(first8)} bytes, fewer than the 8-byte header length")
    (n,) = struct.unpack("<Q", first8[:8])
    if n > SAFETENSORS_HEADER_CAP:
        raise GoldenFileError(
            f"{not_st}: its header length field says {n} bytes, more than the "
            f"{SAFETENSORS_HEADER_CAP} a safetensors header may have"
        )
    if n > size - 8:
        raise GoldenFileError(
            f"{not_st} or is truncated: its header length field says {n} bytes but only {size - 8} follow"
        )
    return n


def _header_json(raw: bytes, size: int, path: str) -> dict[str, Any]:
    """The header object from its raw bytes, checked against a file of ``size`` bytes."""
    not_st = f"{path} is not a safetensors file"
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GoldenFileError(f"{not_st}: its header is not JSON ({e})") from e
    if not isinstance(header, dict):
        raise GoldenFileError(f"{not_st}: its header is not a JSON object")
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            end = max(end, int(info["data_offsets"][1]))
        except (TypeError, KeyError, IndexError, ValueError) as e:
            raise GoldenFileError(f"{not_st}: header entry {name!r} has no data_offsets") from e
    if 8 + len(raw) + end > size:
        raise GoldenFileError(
            f"{path} is truncated: its tensors need {8 + len(raw) + end} bytes but the file has {size}"
        )
    return header


def parse_safetensors_header(data: bytes, path: str) -> dict[str, Any]:
    """The safetensors JSON header, with clear errors for short, foreign and truncated files."""
    n = _header_length(data[:8], len(data), path)
    return _header_json(data[8 : 8 + n], len(data), path)


def read_safetensors_file(
    path: str | os.PathLike, *, what: str = "safetensors file", max_bytes: int = MAX_FILE_BYTES
) -> tuple[bytes, dict[str, Any]]:
    """A safetensors file's bytes and header, read only if the header fits the file.

    Only a regular file is read (see :mod:`swinref.artifacts.fileio`); its header length and the
    tensors' extent are checked against the file size before the tensor bytes are read, so a
    truncated or foreign file costs a few bytes of reading, not its claimed size.
    """
    path = os.fspath(path)
    with open_regular(path, what=what, max_bytes=max_bytes) as f:
        size = os.fstat(f.fileno()).st_size
        first8 = f.read(8)
        n = _header_length(first8, size, path)
        raw = f.read(n)
        header = _header_json(raw, size, path)
        rest = f.read(size - 8 - n + 1)
    if len(rest) != size - 8 - n:
        raise GoldenFileError(f"{path} changed size while it was read")
    return first8 + raw + rest, header


def inside(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether ``path`` (symlinks resolved) lies inside the directory ``root`` (resolved)."""
    r = os.path.realpath(os.fspath(root))
    p = os.path.realpath(os.fspath(path))
    return os.path.commonpath([r, p]) == r


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # some filesystems do not open directories; the rename itself is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(
    path: str | os.PathLike,
    data: bytes | Callable[[IO[bytes]], None],
    *,
    overwrite: bool = False,
    what: str = "output",
) -> None:
    """Write ``data`` (bytes, or a function that writes to a binary file) to ``path`` atomically.

    With ``overwrite=False`` an existing ``path`` raises :class:`OutputExistsError` and is left
    untouched, including when another writer creates it while this one writes. A destination that
    is a directory is always refused. On any failure the temporary file is removed and the
    destination is as it was.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"{what} {path} is a directory, expected a file path")
    if not overwrite and os.path.lexists(path):
        raise OutputExistsError(errno.EEXIST, f"{what} {path} exists; overwrite it explicitly (--force)")
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, f"directory of {what} {path} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path)[:64] + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if path appeared meanwhile: no writer silently loses
            except FileExistsError:
                raise OutputExistsError(
                    errno.EEXIST, f"{what} {path} exists; overwrite it explicitly (--force)"
                ) from None
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                    raise
                if os.path.lexists(path):  # a filesystem without hard links: best effort
                    raise OutputExistsError(
                        errno.EEXIST, f"{what} {path} exists; overwrite it explicitly (--force)"
                    ) from None
                os.replace(tmp, path)
            else:
                os.unlink(tmp)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)
