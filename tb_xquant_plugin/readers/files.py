"""Reading files of a logdir safely, locally or through TensorBoard's ``gfile`` (remote logdirs).

Every file the plugin reads goes through here.  A local file is read only when it is a regular
file whose real path (symlinks resolved) lies inside the logdir; reads are capped by the bytes
actually read (``stat`` says 0 for ``/dev/zero``); a FIFO or device is refused before it is
opened, so nothing blocks.  The directory walk visits each real directory once (device + inode),
never leaves the logdir, and stops at a depth and a directory count."""
from __future__ import annotations

import dataclasses
import json
import os
import posixpath
import stat as stat_mod
from typing import Any, Dict, Iterator, List, Optional, Tuple

from tensorboard.compat import tf

MAX_JSON_BYTES = 64 * 1024 * 1024
CHUNK = 4 * 1024 * 1024
MAX_WALK_DEPTH = 24
MAX_WALK_DIRS = 20_000


class ReadError(Exception):
    """A file that exists but cannot be used: ``what`` is wrong and ``hint`` says how to fix it."""

    def __init__(self, what: str, hint: str):
        super().__init__(what)
        self.what, self.hint = what, hint


def is_remote(path: str) -> bool:
    return "://" in path


def join(*parts: str) -> str:
    """Join path parts the way gfile paths need (keeps URL-style roots such as gs://)."""
    if is_remote(parts[0]):
        return posixpath.join(*parts)
    return os.path.join(*parts)


def inside(root: Optional[str], path: str) -> bool:
    """Whether the real path of ``path`` lies inside the real path of ``root`` (local paths)."""
    if root is None or is_remote(path):
        return True
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def is_canonical(root: Optional[str], path: str) -> bool:
    """Whether ``path`` (below ``root``) reaches its folder without going through a symbolic link: its real path is
    the real root joined with the same relative path.  TensorBoard's own walk follows links, so a data provider
    also lists ``loop/run`` for ``loop -> .``; only the canonical name of a folder is used."""
    if root is None or is_remote(path):
        return True
    rel = os.path.relpath(path, root)
    if rel == os.curdir:
        return True
    return os.path.realpath(path) == os.path.normpath(os.path.join(os.path.realpath(root), rel))


def regular_file(path: str, root: Optional[str], label: str) -> Optional[os.stat_result]:
    """The stat of a local file that may be read, None when it does not exist; ReadError when it must not be read."""
    try:
        st = os.stat(path)  # follows symlinks: the file that would be read
    except FileNotFoundError:
        if os.path.islink(path):
            raise ReadError("%s is a symbolic link to a file that does not exist" % label,
                            "Replace the link with the file itself.") from None
        return None
    except OSError as e:
        raise ReadError("%s could not be read: %s" % (label, e.strerror or e), "Check the file's permissions.") from None
    if not stat_mod.S_ISREG(st.st_mode):
        raise ReadError("%s is not a regular file (a folder, FIFO, socket or device); it was not read" % label,
                        "Put the file the tool wrote there.")
    if not inside(root, path):
        raise ReadError("%s is a symbolic link to a file outside the logdir; it was not read" % label,
                        "Copy the file into the logdir instead of linking to it.")
    return st


def exists(path: str, root: Optional[str] = None) -> bool:
    """Whether a readable regular file is there (False for special files and links out of the logdir)."""
    if is_remote(path):
        try:
            return tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)
        except Exception:  # noqa: BLE001
            return False
    try:
        return regular_file(path, root, path) is not None
    except ReadError:
        return False


def chunks(path: str, offset: int = 0, limit: Optional[int] = None) -> Iterator[bytes]:
    """The bytes of a (checked) file from ``offset`` on, in chunks, at most ``limit`` bytes in all."""
    left = limit
    if not is_remote(path):
        with open(path, "rb") as f:
            f.seek(offset)
            while left is None or left > 0:
                b = f.read(CHUNK if left is None else min(CHUNK, left))
                if not b:
                    return
                if left is not None:
                    left -= len(b)
                yield b
        return
    skip = offset  # TensorBoard's gfile stub cannot seek: read and drop the scanned part
    with tf.io.gfile.GFile(path, "rb") as f:
        while left is None or left > 0:
            b = f.read(CHUNK)
            if not b:
                return
            if skip >= len(b):
                skip -= len(b)
                continue
            b, skip = b[skip:], 0
            if left is not None:
                b = b[:left]
                left -= len(b)
            yield b


def read_bytes(path: str, label: str, limit: int, root: Optional[str] = None) -> Optional[bytes]:
    """A whole file, None when it does not exist; ReadError when it is not a readable regular file inside
    ``root`` or holds more than ``limit`` bytes (counted while reading)."""
    try:
        if is_remote(path):
            if not tf.io.gfile.exists(path):
                return None
        elif regular_file(path, root, label) is None:
            return None
        parts: List[bytes] = []
        size = 0
        for b in chunks(path, 0, limit + 1):
            parts.append(b)
            size += len(b)
    except ReadError:
        raise
    except Exception as e:  # noqa: BLE001
        raise ReadError("%s could not be read: %s" % (label, e), "Check the file's permissions.") from None
    if size > limit:
        raise ReadError("%s is larger than the %d-byte limit; it was not read" % (label, limit),
                        "A file this large is probably not the tool's; re-run the report.")
    return b"".join(parts)


def read_json(path: str, label: str, root: Optional[str] = None, limit: int = MAX_JSON_BYTES) -> Optional[Any]:
    """A JSON file, None when it does not exist; ReadError when it cannot be read or parsed."""
    raw = read_bytes(path, label, limit, root)
    if raw is None:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # RecursionError: absurdly deep nesting
        raise ReadError("%s is not valid JSON (%s); it may still be being written or was truncated" % (label, e),
                        "Wait for the run to finish, or re-run the report.") from None


def file_identity(path: str) -> Tuple[Any, int]:
    """(identity, size) of a file: device and inode for local files (a replaced file is a new one)."""
    if not is_remote(path):
        st = os.stat(path)
        return (st.st_dev, st.st_ino), st.st_size
    return None, tf.io.gfile.stat(path).length


def version_key(path: str) -> Tuple:
    """What identifies one version of a file: size, mtime in ns and inode locally, the length remotely."""
    if not is_remote(path):
        st = os.stat(path)
        return (st.st_size, st.st_mtime_ns, st.st_ino)
    st = tf.io.gfile.stat(path)
    return (st.length, getattr(st, "mtime_nsec", None))


def list_dir(path: str, root: Optional[str] = None) -> List[str]:
    """Names in a folder (empty when it is missing, unreadable, or a link out of the logdir)."""
    try:
        if is_remote(path):
            return [n.rstrip("/") for n in tf.io.gfile.listdir(path)] if tf.io.gfile.isdir(path) else []
        if not os.path.isdir(path) or not inside(root, path):
            return []
        return os.listdir(path)
    except Exception:  # noqa: BLE001 - vanished or unreadable
        return []


def is_dir(path: str, root: Optional[str] = None) -> bool:
    try:
        if is_remote(path):
            return tf.io.gfile.isdir(path)
        return os.path.isdir(path) and inside(root, path)
    except Exception:  # noqa: BLE001
        return False


@dataclasses.dataclass
class WalkStats:
    dirs: int = 0
    skipped_links: int = 0
    truncated: bool = False


def walk(root: str, stats: Optional[WalkStats] = None) -> Iterator[Tuple[str, List[str]]]:
    """``(folder, file names)`` for every folder under ``root``: each real folder once (device + inode), by its
    real path (symbolic links to folders are not followed), never outside ``root``, at most MAX_WALK_DEPTH deep
    and MAX_WALK_DIRS folders (``stats.truncated`` says when it stopped)."""
    stats = stats if stats is not None else WalkStats()
    if is_remote(root):
        try:
            for dirpath, _dirs, files in tf.io.gfile.walk(root):
                stats.dirs += 1
                if stats.dirs > MAX_WALK_DIRS:
                    stats.truncated = True
                    return
                yield dirpath, [f.rstrip("/") for f in files]
        except Exception:  # noqa: BLE001 - a vanished folder mid-walk
            return
        return
    if not os.path.isdir(root):
        return
    seen = set()
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            st = os.stat(folder)
        except OSError:
            continue
        ident = (st.st_dev, st.st_ino)
        if ident in seen:
            continue
        seen.add(ident)
        stats.dirs += 1
        if stats.dirs > MAX_WALK_DIRS:
            stats.truncated = True
            return
        files, subdirs = [], []
        try:
            with os.scandir(folder) as it:
                for e in it:
                    try:
                        if e.is_dir():  # follows links: checked below
                            subdirs.append(e.path)
                        else:
                            files.append(e.name)
                    except OSError:
                        continue
        except OSError:
            continue
        yield folder, sorted(files)
        if depth + 1 > MAX_WALK_DEPTH:
            if subdirs:
                stats.truncated = True
            continue
        for d in sorted(subdirs, reverse=True):
            if os.path.islink(d):
                # Never followed: a link out of the logdir must not be read, and the folder a link inside it points
                # at is reached by its real path anyway (so a report is listed once, under that path, not under
                # ``alias/`` or ``loop/loop/``).
                stats.skipped_links += 1
                continue
            stack.append((d, depth + 1))


def rel_path(root: str, path: str) -> str:
    """``path`` relative to ``root`` with ``/`` separators; ``.`` for the root itself."""
    if is_remote(root):
        r = path[len(root):].strip("/")
    else:
        r = os.path.relpath(path, root).replace("\\", "/")
    return r if r and r != "." else "."


def run_path(report_rel: str, *more: str) -> str:
    parts = [p for p in report_rel.split("/") if p and p != "."] + list(more)
    return "/".join(parts) or "."


def normpath_rel(base_rel: str, rel: str) -> str:
    """Join a path relative to a report dir onto the report's logdir-relative path."""
    return posixpath.normpath(posixpath.join(base_rel if base_rel != "." else "", rel))


def report_dirs_with(root: str, filename: str) -> Dict[str, str]:
    """``{relative path: folder}`` of every folder under ``root`` holding a regular file named ``filename``."""
    out: Dict[str, str] = {}
    for folder, files in walk(root):
        if filename in files and exists(join(folder, filename), root):
            out[rel_path(root, folder)] = folder
    return out


# --------------------------------------------------------------------------------------------------
# Writing (the CLI's --out and exports): the one place in the package that creates files.
# --------------------------------------------------------------------------------------------------
def make_dirs(path: str) -> None:
    """Create a folder and its parents (local or through gfile); an existing folder is fine."""
    if is_remote(path):
        tf.io.gfile.makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def write_text(path: str, text: str) -> None:
    """Write a UTF-8 text file (local or through gfile), replacing one that is there.  Locally the text goes
    to a temporary file beside it first, so a reader never sees half a file."""
    data = text.encode("utf-8", "replace")  # a lone surrogate in a model's name becomes "?": always valid UTF-8
    if is_remote(path):
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(data)
        return
    tmp = "%s.tmp-%d" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)
