"""Leases in the forecast store: several replicas on one store compute each rollout once.

A replica that is about to compute a rollout takes its lease; the others wait for the rollout to appear in
the store and take the lease over only when it expires (its holder died or hangs). The only primitive is
an atomic create-if-absent write in the store itself, so no lock server is needed:

- on S3 (and S3-compatible servers: MinIO, moto) a conditional PUT with `If-None-Match: *`, which s3fs
  sends for `pipe_file(..., mode="create")` and answers with FileExistsError when the object exists;
- in a local folder (one machine, or a shared file system with exclusive create) `open(path, "xb")`.

A lease is a sequence of objects `{root}/{key}/{generation}.json`, each written once and never changed,
holding its owner and the time it expires. The highest generation is the lease's state. Taking a lease
(first, over an expired one, or renewing one's own) creates the next generation; of several replicas
trying at once exactly one create succeeds. Releasing removes the key's objects once the rollout is stored.
Expiry times are compared with the clock of the replica reading them (`clock`, replaceable in tests), so
replicas' clocks must agree to well within `seconds`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.store import process_alive

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lease:
    """A lease held: its key, the generation written and when it expires."""

    key: str
    generation: int
    expires: float


class LeaseBook:
    """Leases under `root` of the fsspec filesystem `fs`, taken by `owner` for `seconds` at a time."""

    def __init__(
        self,
        fs: Any,
        root: str,
        *,
        owner: str,
        seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.owner = owner
        self.seconds = seconds
        self.clock = clock
        self._local = "file" in _protocols(fs)
        self._lock = threading.Lock()
        self.taken_over = 0  # leases taken from a holder whose lease had expired

    def _folder(self, key: str) -> str:
        return f"{self.root}/{key}"

    def _generations(self, key: str) -> list[int]:
        try:
            names = self.fs.ls(self._folder(key), detail=False, refresh=True)  # no stale listing
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            stem = str(name).rstrip("/").rsplit("/", 1)[-1].removesuffix(".json")
            if stem.isdigit():
                found.append(int(stem))
        return sorted(found)

    def _read(self, key: str, generation: int) -> dict[str, Any] | None:
        """A lease object, None when it cannot be read (being written this instant, or removed)."""
        try:
            body = json.loads(self.fs.cat_file(f"{self._folder(key)}/{generation:010d}.json"))
        except (OSError, ValueError):
            return None
        return body if isinstance(body, dict) else None

    def _create(self, key: str, generation: int, body: bytes) -> bool:
        """Write a lease object only if absent; False when another replica wrote it first."""
        path = f"{self._folder(key)}/{generation:010d}.json"
        try:
            if self._local:
                self.fs.makedirs(self._folder(key), exist_ok=True)
                with open(self.fs._strip_protocol(path), "xb") as handle:
                    handle.write(body)
            else:
                self.fs.pipe_file(path, body, mode="create")
        except FileExistsError:
            return False
        return True

    def acquire(self, key: str) -> Lease | None:
        """Take the lease of `key` when it is free, expired or already ours; None when another holds it."""
        with self._lock:
            generations = self._generations(key)
            latest = generations[-1] if generations else 0
            if latest:
                body = self._read(key, latest)
                if body is not None and body.get("owner") != self.owner:
                    if self._live(body):
                        return None
                    log.warning("lease %s of %s expired: taking it over", key, body.get("owner"))
                    self.taken_over += 1
            return self._write(key, latest + 1)

    def _write(self, key: str, generation: int) -> Lease | None:
        expires = self.clock() + self.seconds
        body = json.dumps({"owner": self.owner, "expires": expires}).encode()
        if not self._create(key, generation, body):
            return None
        return Lease(key, generation, expires)

    def renew(self, lease: Lease) -> Lease | None:
        """Extend a lease we hold by writing its next generation; None when it was lost (taken over)."""
        with self._lock:
            return self._write(lease.key, lease.generation + 1)

    def due(self, lease: Lease) -> bool:
        """Whether a third of the lease is left or less: time to renew it."""
        return lease.expires - self.clock() <= self.seconds / 3

    def _live(self, body: dict[str, Any]) -> bool:
        """Whether a lease object still holds: not expired, and its owner is not a process of this machine
        known to have ended (a replica restarted after a crash does not wait for its own old lease)."""
        if float(body.get("expires", 0.0)) <= self.clock():
            return False
        host, _, rest = str(body.get("owner", "")).partition("/")
        pid = rest.partition("/")[0]
        if host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid():
            return process_alive(int(pid))
        return True

    def holder(self, key: str) -> str | None:
        """Who holds the lease of `key` now (None when it is free or has expired)."""
        generations = self._generations(key)
        body = self._read(key, generations[-1]) if generations else None
        return str(body.get("owner")) if body is not None and self._live(body) else None

    def release(self, key: str) -> None:
        """Remove the lease objects of `key` (its rollout is stored: nobody needs to take it), unless
        another replica took the lease over meanwhile (then it is that replica's to release)."""
        generations = self._generations(key)
        body = self._read(key, generations[-1]) if generations else None
        if body is not None and body.get("owner") != self.owner:
            return
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._folder(key), recursive=True)


def owner_id() -> str:
    """A replica's name in the leases it writes: `host/pid/random` (several replicas may share a process)."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
