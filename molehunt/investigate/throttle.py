"""Sign-in throttling: exponential back-off per user name and per address, and a
lockout after too many wrong passwords in a row.

A user name or an address may fail :attr:`Throttle.free` times freely; after that
each further try must wait ``base * 2 ** (failures - free)`` seconds (at most
``ceiling``) after the last failure, and is refused with 429 and ``Retry-After``
without the password being checked. After :attr:`Throttle.lock_after` failures in a
row a user name is locked out until an admin lifts it (the store keeps the lockout
of real users, :func:`molehunt.investigate.users.lock_user`; unknown names are locked the same
way in memory, so the answers do not tell which names exist). A right password
clears the name's and the address's count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Tries:
    failures: int = 0
    last: float = 0.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """May this sign-in try go ahead: ``wait`` seconds to go (0: yes), ``locked``."""

    wait: float
    locked: bool

    @property
    def allowed(self) -> bool:
        return not self.locked and self.wait <= 0


class Throttle:
    """Failure counts kept in memory (by user name and by address), thread-safe."""

    def __init__(
        self,
        *,
        free: int = 3,
        address_free: int = 20,
        base: float = 1.0,
        ceiling: float = 300.0,
        lock_after: int = 10,
        clock: Callable[[], float] = time.monotonic,
        keep: int = 100_000,
    ) -> None:
        self.free = free
        self.address_free = address_free
        self.base = base
        self.ceiling = ceiling
        self.lock_after = lock_after
        self.clock = clock
        self.keep = keep  # the most names or addresses remembered (memory stays bounded)
        self._names: dict[str, _Tries] = {}
        self._addresses: dict[str, _Tries] = {}
        self._locked: set[str] = set()
        self._mutex = threading.Lock()

    def _wait(self, tries: _Tries | None, free: int, now: float) -> float:
        if tries is None or tries.failures < free:
            return 0.0
        delay: float = min(self.ceiling, self.base * 2.0 ** (tries.failures - free))
        return max(0.0, tries.last + delay - now)

    def check(self, name: str, address: str) -> Verdict:
        """Whether a try as ``name`` from ``address`` may have its password checked."""
        now = self.clock()
        key = name.casefold()
        with self._mutex:
            if key in self._locked:
                return Verdict(0.0, True)
            wait = max(
                self._wait(self._names.get(key), self.free, now),
                self._wait(self._addresses.get(address), self.address_free, now),
            )
        return Verdict(wait, False)

    def failed(self, name: str, address: str) -> int:
        """Count a wrong password; returns the name's failures in a row (at
        :attr:`lock_after` the name is locked)."""
        now = self.clock()
        key = name.casefold()
        with self._mutex:
            for table, k in ((self._names, key), (self._addresses, address)):
                if k not in table and len(table) >= self.keep:
                    table.pop(next(iter(table)))  # the oldest entry
                tries = table.setdefault(k, _Tries())
                tries.failures += 1
                tries.last = now
            failures = self._names[key].failures
            if failures >= self.lock_after:
                self._locked.add(key)
        return failures

    def succeeded(self, name: str, address: str) -> None:
        key = name.casefold()
        with self._mutex:
            self._names.pop(key, None)
            self._addresses.pop(address, None)

    def lock(self, name: str) -> None:
        """Lock a name (a lockout the store remembered from before a restart)."""
        with self._mutex:
            self._locked.add(name.casefold())

    def lifted(self, name: str) -> None:
        """The store says the name is not locked: when it is locked here, an admin
        lifted the lockout elsewhere (the CLI), so the name starts afresh."""
        key = name.casefold()
        with self._mutex:
            if key in self._locked:
                self._locked.discard(key)
                self._names.pop(key, None)

    def unlock(self, name: str) -> None:
        """An admin lifted the lockout: the name starts afresh."""
        key = name.casefold()
        with self._mutex:
            self._locked.discard(key)
            self._names.pop(key, None)
