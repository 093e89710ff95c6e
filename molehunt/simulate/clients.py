"""The client master: Chinese names, resident ID numbers, mobiles and addresses.

Rows are made in fixed-size blocks, each from its own random stream, so any row
can be made again on its own (for endpoint and leaked files) without keeping the
whole master in memory. The people themselves are made by :mod:`molehunt.synthetic`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import numpy as np

from molehunt.synthetic import BRANCHES, PRODUCTS, People, make_people

BLOCK = 65_536


#: Columns of clients.csv; only ``name``, ``id_number``, ``mobile`` and ``address``
#: are personal data.
COLUMNS = (
    "client_id", "name", "id_number", "mobile", "address", "city", "branch", "product",
    "owner_employee_id",
)  # fmt: skip


def client_id(index: int) -> str:
    return f"C{index + 1:08d}"


class ClientMaster:
    """The company's clients; rows are made block by block from the seed."""

    def __init__(self, seed: int, count: int, as_of: date) -> None:
        self.seed = seed
        self.count = count
        self.as_of = as_of
        blocks = (count + BLOCK - 1) // BLOCK
        # The branch of each client is needed to give it an owner: make it once.
        self.branch = np.concatenate(
            [self._block(b).branches for b in range(blocks)]
        ) if count else np.empty(0, dtype=np.int64)  # fmt: skip
        self.owner = np.full(count, -1, dtype=np.int32)  # staff index; set by the company

    def _rng(self, block: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, 0xC11E, block])

    def _block(self, block: int) -> People:
        n = min(BLOCK, self.count - block * BLOCK)
        return make_people(self._rng(block), n, self.as_of)

    def rows(self, indices: Sequence[int]) -> list[tuple[str, str, str, str, str]]:
        """(client_id, name, id_number, mobile, address) of the given clients, in order."""
        by_block: dict[int, list[int]] = {}
        for i in indices:
            by_block.setdefault(i // BLOCK, []).append(i)
        made: dict[int, tuple[str, str, str, str, str]] = {}
        for block, members in sorted(by_block.items()):
            people = self._block(block)
            for i in members:
                j = i - block * BLOCK
                made[i] = (
                    client_id(i),
                    people.names[j],
                    people.id_numbers[j],
                    people.mobiles[j],
                    people.addresses[j],
                )
        return [made[i] for i in indices]

    def write_csv(self, path: Path, owner_ids: Sequence[str]) -> int:
        """Write ``clients.csv``; ``owner_ids[k]`` is the employee id of staff ``k``."""
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(COLUMNS)
            for block_rows in self._csv_blocks(owner_ids):
                writer.writerows(block_rows)
        return self.count

    def _csv_blocks(self, owner_ids: Sequence[str]) -> Iterator[list[tuple[str, ...]]]:
        for block in range((self.count + BLOCK - 1) // BLOCK):
            people = self._block(block)
            base = block * BLOCK
            owners = self.owner[base : base + len(people.names)].tolist()
            yield [
                (
                    client_id(base + j),
                    people.names[j],
                    people.id_numbers[j],
                    people.mobiles[j],
                    people.addresses[j],
                    BRANCHES[b][1],
                    BRANCHES[b][0],
                    PRODUCTS[p],
                    owner_ids[o] if o >= 0 else "",
                )
                for j, (b, p, o) in enumerate(
                    zip(people.branches.tolist(), people.products.tolist(), owners, strict=True)
                )
            ]


def noise_rows(seed: int, n: int, as_of: date) -> list[tuple[str, str, str, str]]:
    """People who are no client (name, id_number, mobile, address): padding in leaked files."""
    people = make_people(np.random.default_rng([seed, 0x0153]), n, as_of)
    return list(zip(people.names, people.id_numbers, people.mobiles, people.addresses, strict=True))
