"""An on-disk score cache: a re-run scores only what is new, and an interrupted run resumes where it stopped.

Rows are keyed by (scorer identity, sha256 of prompt and response) and hold the scorer's K raw scores.
SQLite in WAL mode lets several processes (one per rank) read and write the same file; every
:meth:`ScoreCache.put_many` is its own transaction, so what was committed survives a crash.
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
from pathlib import Path

import numpy as np

from preforch.errors import PreforchError
from preforch.models.paths import cache_root

CACHE_FILE = "scores.sqlite"
_SCHEMA_VERSION = 1
_SELECT_CHUNK = 500  # keys per SELECT ... IN (...), below SQLite's parameter limit


def default_cache_path() -> Path:
    """``cache_root() / "scores.sqlite"`` ($PREFORCH_CACHE or ~/.cache/preforch)."""
    return cache_root() / CACHE_FILE


def pair_key(prompt: str, response: str) -> bytes:
    """sha256 over the length-prefixed UTF-8 prompt and response (so no separator can collide)."""
    p, r = prompt.encode("utf-8"), response.encode("utf-8")
    h = hashlib.sha256()
    h.update(struct.pack("<Q", len(p)))
    h.update(p)
    h.update(struct.pack("<Q", len(r)))
    h.update(r)
    return h.digest()


class ScoreCache:
    """Scores of (prompt, response) pairs per scorer identity, stored in one SQLite file.

    ``hits`` and ``misses`` count lookups since the cache was opened.
    """

    def __init__(self, path: str | Path | None = None, timeout: float = 120.0) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        if self.path.is_dir():
            raise PreforchError(f"{self.path}: the score cache path is a folder; give a file (e.g. scores.sqlite)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise PreforchError(f"{self.path}: cannot create the score cache's folder ({err.strerror or err}); set "
                                "cache_path or cache: false") from None
        try:
            self._db = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS scorers (id INTEGER PRIMARY KEY, identity TEXT UNIQUE NOT NULL)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS scores (scorer INTEGER NOT NULL, key BLOB NOT NULL, "
                "value BLOB NOT NULL, PRIMARY KEY (scorer, key)) WITHOUT ROWID"
            )
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(_SCHEMA_VERSION),))
            (version,) = self._db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as err:
            raise PreforchError(f"{self.path}: not a usable score cache ({err}); delete it or set cache_path") from None
        except OSError as err:
            raise PreforchError(f"{self.path}: cannot open the score cache ({err.strerror or err})") from None
        if version != str(_SCHEMA_VERSION):
            raise PreforchError(f"{self.path}: score cache schema {version}, expected {_SCHEMA_VERSION}; delete it")
        self._ids: dict[str, int] = {}
        self.hits = 0
        self.misses = 0

    def _scorer_id(self, identity: str) -> int:
        if identity not in self._ids:
            self._db.execute("INSERT OR IGNORE INTO scorers (identity) VALUES (?)", (identity,))
            (sid,) = self._db.execute("SELECT id FROM scorers WHERE identity = ?", (identity,)).fetchone()
            self._ids[identity] = int(sid)
        return self._ids[identity]

    def get_many(self, identity: str, keys: list[bytes], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Look ``keys`` up. Returns (found [N] bool, values [N, k] float64, NaN where not found)."""
        sid = self._scorer_id(identity)
        found = np.zeros(len(keys), dtype=bool)
        values = np.full((len(keys), k), np.nan)  # [N, k]
        where: dict[bytes, list[int]] = {}
        for i, key in enumerate(keys):
            where.setdefault(key, []).append(i)
        unique = list(where)
        for start in range(0, len(unique), _SELECT_CHUNK):
            chunk = unique[start : start + _SELECT_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, value FROM scores WHERE scorer = ? AND key IN ({marks})",
                                    (sid, *chunk)).fetchall()
            for key, blob in rows:
                value = np.frombuffer(blob, dtype="<f8")
                if value.shape != (k,):
                    continue  # a stale entry of another width: treat as missing and overwrite
                idx = where[bytes(key)]
                found[idx] = True
                values[idx] = value
        self.hits += int(found.sum())
        self.misses += int((~found).sum())
        return found, values

    def put_many(self, identity: str, keys: list[bytes], values: np.ndarray) -> None:
        """Store ``values`` [M, k] for ``keys`` in one committed transaction."""
        values = np.asarray(values, dtype="<f8")
        if values.ndim != 2 or values.shape[0] != len(keys):
            raise ValueError(f"put_many: values of shape {values.shape} for {len(keys)} keys")
        if not keys:
            return
        sid = self._scorer_id(identity)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR REPLACE INTO scores (scorer, key, value) VALUES (?, ?, ?)",
                                 [(sid, key, values[i].tobytes()) for i, key in enumerate(keys)])
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def count(self, identity: str | None = None) -> int:
        """Stored entries, for one identity or all."""
        if identity is None:
            return int(self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0])
        return int(self._db.execute("SELECT COUNT(*) FROM scores WHERE scorer = ?",
                                    (self._scorer_id(identity),)).fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ScoreCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
