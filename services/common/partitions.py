"""Which partition a dealer belongs to: the one function every publisher of events uses.

A dealer's events all travel to one partition queue, so that exactly one rules worker judges
them, in order. The partition is computed by the publisher (never by the broker: the
consistent-hash exchange may move keys after a broker restart, see docs/scaling.md) and put
first in the routing key, `p<N>.<event type>.<dealer>`.

    partition = int.from_bytes(blake2b(dealer_id as UTF-8, digest_size=8), "big") % partitions

The count is fixed for a deployment (`DEALERWATCH_PARTITIONS`, default 32): changing it moves
dealers between partitions, so it is done with the stack drained (docs/scaling.md).
"""

from __future__ import annotations

from functools import lru_cache
from hashlib import blake2b

DEFAULT_PARTITIONS = 32
MAX_PARTITIONS = 1024


@lru_cache(maxsize=65536)
def partition_of(dealer_id: str, partitions: int) -> int:
    digest = blake2b(dealer_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def partition_key(partition: int) -> str:
    """The routing key's first word for a partition."""
    return f"p{partition}"
