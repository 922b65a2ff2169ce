"""Opening a study's Optuna storage: a journal file or an RDB URL, checked before anything is
written to it.

A journal cut short mid-record (a crash or a full disk during an append) is repaired: the damaged
file is kept as a backup, every complete record is kept, and one ``warning:`` line says how many
records were dropped. A file that is not a journal, or an SQLite file that is not a database, is
refused with one line naming the file, and nothing is appended to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

from supernet.errors import SharenasError
from supernet.fileio import write_atomic

JOURNAL_SUFFIXES = (".log", ".journal")
SQLITE_MAGIC = b"SQLite format 3\x00"
#: Errors of two processes creating an RDB storage's tables at once (the second one retries).
SCHEMA_RACE = ("already exists", "UNIQUE constraint failed", "duplicate key", "IntegrityError")
JOURNAL_START = b'{"op_code":'  # how every record Optuna's JournalFileBackend writes begins


def open_storage(storage: str | None) -> optuna.storages.BaseStorage:
    """``None``: in memory; a path ending in .log/.journal: a journal file (safe for several
    processes on one file system); anything else is an RDB URL (``sqlite:///study.db``,
    ``postgresql://user@host:port/db``)."""
    if storage is None:
        return optuna.storages.InMemoryStorage()
    text = str(storage)
    if text.endswith(JOURNAL_SUFFIXES):
        path = Path(text).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        check_journal(path)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if "://" not in text:  # neither a journal path nor a database URL
        sqlite = text.endswith((".db", ".sqlite", ".sqlite3"))
        hint = f"; for an SQLite file: sqlite:///{Path(text).expanduser()}" if sqlite else ""
        raise SharenasError(
            f"searcher.storage={text} is neither a journal file nor a database URL; allowed: a "
            f"path ending in {' or '.join(JOURNAL_SUFFIXES)}, sqlite:///<file>, "
            f"postgresql://<user>@<host>/<db> (or any SQLAlchemy URL){hint}"
        )
    if text.startswith("sqlite:///"):
        check_sqlite(Path(text.removeprefix("sqlite:///")), text)
    for attempt in range(3):
        try:
            return optuna.storages.RDBStorage(text)
        except Exception as err:  # sqlalchemy's many error types: one line, naming the URL
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            if attempt < 2 and any(w in first for w in SCHEMA_RACE):
                time.sleep(0.2 * (attempt + 1))  # another process created the schema meanwhile
                continue
            raise SharenasError(f"searcher.storage={text} cannot be opened: {first}") from None
    raise AssertionError("unreachable")


def check_sqlite(path: Path, url: str) -> None:
    """Refuse an existing, non-empty file that is not an SQLite database."""
    if path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as f:
            if f.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                raise SharenasError(
                    f"searcher.storage={url}: {path} is not an SQLite database (wrong header); "
                    f"move it away or name another file"
                )


def _journal_lines(path: Path, data: bytes) -> tuple[list[bytes], bytes]:
    """(complete lines, partial tail) of a journal; refuses lines that are not JSON records."""
    *lines, tail = data.split(b"\n")
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            record = None
        if not isinstance(record, dict) or "op_code" not in record:
            raise SharenasError(
                f"searcher.storage={path} is not an Optuna journal (line {number} is not a "
                f"journal record); move it away or name another file"
            )
    if tail and not JOURNAL_START.startswith(tail[: len(JOURNAL_START)]):
        raise SharenasError(
            f"searcher.storage={path} is not an Optuna journal (its last line is not a journal "
            f"record); move it away or name another file"
        )
    return lines, tail


def check_journal(path: Path) -> None:
    """Check a journal file under its own lock; repair a partial last record (see module doc)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        data = path.read_bytes()
        lines, tail = _journal_lines(path, data)
        if not tail:
            return
        try:
            json.loads(tail)
        except (json.JSONDecodeError, UnicodeDecodeError):
            _drop_partial_record(path, data, lines)
        else:  # a whole record whose newline was lost: complete it
            with path.open("ab") as f:
                f.write(b"\n")
                f.flush()
                os.fsync(f.fileno())
    finally:
        lock.release()


def _drop_partial_record(path: Path, data: bytes, lines: list[bytes]) -> None:
    backup = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    shutil.copy2(path, backup)
    kept = b"".join(line + b"\n" for line in lines)
    write_atomic(path, lambda f: f.write(kept))
    print(
        f"warning: searcher.storage={path} ended in a partial record (a crash or a full disk "
        f"during a write): kept {len(lines)} complete records, dropped 1 partial record of "
        f"{len(data) - len(kept)} bytes; the damaged file is kept as {backup}",
        file=sys.stderr,
    )


def checkpoint_identity(path: str | Path) -> dict[str, str]:
    """``{"path": resolved path, "sha256": hash of the bytes}`` of a supernet checkpoint.

    A content hash rather than path + size + mtime: a moved or copied checkpoint is still the same
    supernet and may resume its study, while a supernet retrained into the same path (same size,
    e.g. a reused hydra.run.dir) is not. Reading the file once costs about a second per GB, small
    next to loading it and scoring archs. The path only names the checkpoint in messages."""
    resolved = Path(path).expanduser().resolve()
    with resolved.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return {"path": str(resolved), "sha256": digest}
