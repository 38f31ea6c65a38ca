"""Deadlines per dealer: a heap, so a tick touches only the dealers that are due.

The live service pops what is due at wall time; a replay pops what is due at
the time of the next event. Either way a dealer is judged at its deadline
(event time), which makes live runs and replays agree.
"""

from __future__ import annotations

import heapq


class DeadlineClock:
    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._deadline: dict[str, float] = {}  # the current deadline; older heap entries are stale

    def __len__(self) -> int:
        return len(self._deadline)

    def schedule(self, dealer_id: str, deadline: float | None) -> None:
        if deadline is None:
            self._deadline.pop(dealer_id, None)
            return
        if self._deadline.get(dealer_id) == deadline:
            return
        self._deadline[dealer_id] = deadline
        heapq.heappush(self._heap, (deadline, dealer_id))

    def deadline(self, dealer_id: str) -> float | None:
        return self._deadline.get(dealer_id)

    def next_time(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float, limit: int | None = None) -> list[tuple[str, float]]:
        """(dealer, deadline) for every deadline at or before `now` (the `limit` earliest),
        earliest first."""
        due: list[tuple[str, float]] = []
        while limit is None or len(due) < limit:
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now:
                return due
            deadline, dealer_id = heapq.heappop(self._heap)
            del self._deadline[dealer_id]
            due.append((dealer_id, deadline))
        return due

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap and self._deadline.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
