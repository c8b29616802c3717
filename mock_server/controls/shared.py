"""The journal and fault controls of several worker processes, kept in one SQLite store.

With ``--workers N`` each uvicorn worker is a process of its own, so an admin call reaches one of
them at random. For the admin API to answer for the whole server, the workers keep what it shows
and changes in SQLite databases (the standard library's, in WAL mode, so readers never wait for a
writer): the journal in one, the fault rules and latency in another. A counted rule is claimed
with one ``UPDATE ... WHERE remaining > 0``, so ``times=2`` fires exactly twice across workers.

Nothing secret is stored: journal entries are written as shown (credentials redacted), and the
directory (in ``/dev/shm`` where there is one, so in memory) is removed when the server stops.
A single worker never uses this module.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..types import JSON
from .faults import Fault, FaultPlan, FaultRule
from .journal import Journal, JournalEntry
from .latency import Latency

__all__ = ["SHARED_STATE_VARIABLE", "SharedJournal", "SharedPlan", "SharedStore", "shared_store"]

SHARED_STATE_VARIABLE = "AIMLAPI_MOCK_SHARED_STATE"
"""Tells worker processes the directory of the store (set by ``serve --workers N``)."""
TRIM_EVERY = 32
"""The journal is trimmed to its byte limit once in this many entries (to its count each time)."""


class SharedStore:
    """Connections to the store's two databases in ``directory`` (made if missing)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self.journal = self._connect("journal.sqlite")
        self.controls = self._connect("controls.sqlite")
        with self._lock:
            self.journal.execute(
                "CREATE TABLE IF NOT EXISTS entries (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "received_at REAL, model TEXT, size INTEGER, entry TEXT)"
            )
            self.controls.execute(
                "CREATE TABLE IF NOT EXISTS rules "
                "(id INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT, remaining INTEGER)"
            )
            self.controls.execute(
                "CREATE TABLE IF NOT EXISTS latency (one INTEGER PRIMARY KEY, text TEXT)"
            )

    def _connect(self, name: str) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.directory / name, timeout=10, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=OFF")  # a fake's journal need not survive a crash
        return connection

    @contextmanager
    def transaction(self, connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        with self._lock:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def query(
        self, connection: sqlite3.Connection, sql: str, *args: object
    ) -> list[tuple[JSON, ...]]:
        with self._lock:
            return connection.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self.journal.close()
            self.controls.close()


@contextmanager
def shared_store(rules: Iterable[str], latency: str | None) -> Iterator[Path]:
    """A new store's directory, set up with the configured ``rules`` and ``latency``; removed
    afterwards. The workers open it through :data:`SHARED_STATE_VARIABLE`."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    directory = Path(tempfile.mkdtemp(prefix="aimlapi-mock-", dir=base))
    try:
        store = SharedStore(directory)
        SharedPlan(store).reset(rules, latency)
        store.close()
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class SharedJournal(Journal):
    """A :class:`Journal` whose entries live in the store, as shown (credentials redacted)."""

    def __init__(self, store: SharedStore, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.store = store
        self._recorded = 0

    def record(self, entry: JournalEntry) -> None:
        if not self.limit:
            return
        self._bound(entry)
        row = json.dumps(_stored(entry), ensure_ascii=False, separators=(",", ":"))
        self._recorded += 1
        with self.store.transaction(self.store.journal) as db:
            db.execute(
                "INSERT INTO entries (received_at, model, size, entry) VALUES (?, ?, ?, ?)",
                (entry.received_at, entry.model, entry.size, row),
            )
            db.execute(
                "DELETE FROM entries WHERE id <= "
                "(SELECT id FROM entries ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (self.limit,),
            )
            if self._recorded % TRIM_EVERY == 0:
                db.execute(
                    "DELETE FROM entries WHERE id <= (SELECT id FROM (SELECT id, SUM(size) "
                    "OVER (ORDER BY id DESC) AS kept FROM entries) WHERE kept > ? "
                    "ORDER BY id DESC LIMIT 1)",
                    (self.max_bytes,),
                )

    def clear(self) -> None:
        with self.store.transaction(self.store.journal) as db:
            db.execute("DELETE FROM entries")
        self.errors.clear()

    @property
    def entries(self) -> list[JournalEntry]:
        return self.page()[0]

    def page(
        self, offset: int = 0, limit: int | None = None, *, model: str | None = None
    ) -> tuple[list[JournalEntry], int]:
        where, args = ("WHERE model = ?", (model,)) if model else ("", ())
        total = self.store.query(self.store.journal, f"SELECT COUNT(*) FROM entries {where}", *args)
        rows = self.store.query(
            self.store.journal,
            f"SELECT entry FROM entries {where} ORDER BY received_at, id LIMIT ? OFFSET ?",
            *args,
            -1 if limit is None else limit,
            offset,
        )
        return [_restored(json.loads(row[0])) for row in rows], int(total[0][0])

    def __len__(self) -> int:
        return int(self.store.query(self.store.journal, "SELECT COUNT(*) FROM entries")[0][0])


def _stored(entry: JournalEntry) -> dict[str, JSON]:
    """What the store keeps of ``entry``: enough to rebuild it as shown, and nothing secret."""
    body = entry.body
    own = entry._own_answer
    response = entry._response_body
    return {
        "received_at": entry.received_at,
        "method": entry.method,
        "path": entry.path,
        "query": entry.query,
        "headers": list(entry.headers.items()),
        "body": None if body is None else json.dumps(body, ensure_ascii=False),
        "body_size": entry.body_size,
        "body_truncated": entry.body_truncated,
        "headers_truncated": entry.headers_truncated,
        "is_generation": entry.is_generation,
        "status": entry.status,
        "response_headers": list(entry.response_headers.items()),
        "response_body": None if response is None else response.decode("utf-8", "replace"),
        "own_answer": None if own is None else own.decode("utf-8", "replace"),
        "duration": entry.duration,
        "fault": entry.fault,
        "error": repr(entry.error) if entry.error is not None else None,
    }


def _restored(row: dict[str, JSON]) -> JournalEntry:
    def text(name: str) -> bytes | None:
        value = row[name]
        return None if value is None else str(value).encode("utf-8")

    def pairs(name: str) -> list[tuple[bytes, bytes]]:
        return [(n.encode("latin-1"), v.encode("latin-1", "replace")) for n, v in row[name]]

    entry = JournalEntry(
        row["received_at"],
        row["method"],
        row["path"],
        str(row["query"]).encode("latin-1", "replace"),
        pairs("headers"),
        text("body") or b"",
        row["is_generation"],
        row["status"],
        pairs("response_headers"),
        text("response_body"),
        row["duration"],
        fault=row["fault"],
        own_answer=text("own_answer"),
        error=RuntimeError(row["error"]) if row["error"] is not None else None,
    )
    entry.body_size = row["body_size"]
    entry.body_truncated = row["body_truncated"]
    entry.headers_truncated = row["headers_truncated"]
    entry.redacted_headers = frozenset()
    return entry


class SharedPlan(FaultPlan):
    """A :class:`FaultPlan` whose rules and latency live in the store.

    Each worker keeps a copy, reloaded when another process changed the store (SQLite's
    ``data_version`` tells, for the price of one pragma); counted rules are claimed in the store.
    """

    def __init__(self, store: SharedStore) -> None:
        self.store = store
        self._ids: list[int] = []
        self._version: int | None = None
        self._ready = False
        super().__init__()
        self._ready = True
        self._reload()

    # Read by the request pipeline: each look syncs with the other workers first.

    @property
    def rules(self) -> list[FaultRule]:
        self._sync()
        return super().rules

    @property
    def latency(self) -> Latency | None:
        self._sync()
        return self._latency

    @property
    def idle(self) -> bool:
        self._sync()
        return not self._rules and self._latency is None

    def pick(self, model: Callable[[], str | None]) -> Fault | None:
        self._sync()
        if not self._rules:
            return None
        wanted = model() if any(r.model is not None for r in self._rules) else None
        with self._lock:
            for rule, rule_id in list(zip(self._rules, self._ids, strict=True)):
                counted = rule.times is not None
                if not rule.fires(wanted):
                    continue
                claimed = not counted or self._claim(rule_id)
                if counted and (rule.times == 0 or not claimed):
                    index = self._rules.index(rule)
                    del self._rules[index], self._ids[index]
                if claimed:  # else another worker used it up meanwhile
                    return rule.fault
        return None

    def describe(self) -> dict[str, object]:
        self._sync()
        return super().describe()

    # Changed by the admin routes: written to the store, then reloaded.

    def add(self, rule: str | FaultRule) -> FaultRule:
        rule = FaultRule.parse(rule) if isinstance(rule, str) else rule
        with self.store.transaction(self.store.controls) as db:
            db.execute("INSERT INTO rules (text, remaining) VALUES (?, ?)", _row(rule))
        self._reload()
        return rule

    def set_latency(self, latency: str | Latency | None) -> Latency | None:
        parsed = Latency.parse(latency) if isinstance(latency, str) else latency
        if not self._ready:
            return FaultPlan.set_latency(self, parsed)
        with self.store.transaction(self.store.controls) as db:
            db.execute("DELETE FROM latency")
            if parsed is not None:
                db.execute("INSERT INTO latency (one, text) VALUES (1, ?)", (str(parsed),))
        self._reload()
        return parsed

    def reset(
        self, rules: Iterable[str | FaultRule] = (), latency: str | Latency | None = None
    ) -> None:
        if not self._ready:
            return  # FaultPlan.__init__: the store decides
        parsed = [FaultRule.parse(r) if isinstance(r, str) else r for r in rules]
        latency = Latency.parse(latency) if isinstance(latency, str) else latency
        with self.store.transaction(self.store.controls) as db:
            db.execute("DELETE FROM rules")
            db.executemany("INSERT INTO rules (text, remaining) VALUES (?, ?)", map(_row, parsed))
            db.execute("DELETE FROM latency")
            if latency is not None:
                db.execute("INSERT INTO latency (one, text) VALUES (1, ?)", (str(latency),))
        self._reload()

    # The store ----------------------------------------------------------------------------

    def _claim(self, rule_id: int) -> bool:
        with self.store.transaction(self.store.controls) as db:
            claimed = db.execute(
                "UPDATE rules SET remaining = remaining - 1 WHERE id = ? AND remaining > 0",
                (rule_id,),
            ).rowcount
            db.execute("DELETE FROM rules WHERE remaining = 0")
        return claimed == 1

    def _sync(self) -> None:
        version = self.store.query(self.store.controls, "PRAGMA data_version")[0][0]
        if version != self._version:
            self._reload()

    def _reload(self) -> None:
        self._version = self.store.query(self.store.controls, "PRAGMA data_version")[0][0]
        rows = self.store.query(
            self.store.controls, "SELECT id, text, remaining FROM rules ORDER BY id"
        )
        latency = self.store.query(self.store.controls, "SELECT text FROM latency")
        rules = []
        for _, text, remaining in rows:
            rule = FaultRule.parse(text)
            rule.times = remaining
            rules.append(rule)
        with self._lock:
            self._rules = rules
            self._ids = [row[0] for row in rows]
        FaultPlan.set_latency(self, latency[0][0] if latency else None)


def _row(rule: FaultRule) -> tuple[str, int | None]:
    return str(dataclasses.replace(rule, times=None)), rule.times
