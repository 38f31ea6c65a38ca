"""Dealer state in MongoDB (collection `rules_dealers`): the only module of rules using motor.

Ids chosen by upstream systems (event, promotion ids) may contain `.` or `$`,
so they are stored as values in lists, never as document keys.
"""

from __future__ import annotations

from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import ReplaceOne

from services.common.settings import Settings

from .state import DealerState, Episode, Promotion

COLLECTION = "rules_dealers"
FORMAT = 1


def to_doc(state: DealerState) -> dict:
    return {
        "_id": state.dealer_id,
        "format": FORMAT,
        "first_seen": state.first_seen,
        "latest": state.latest,
        "last_visit_at": state.last_visit_at,
        "sales": [list(sale) for sale in state.sales],
        "promotions": [{"id": key, **vars(p)} for key, p in state.promotions.items()],
        "targets": [[period, sales, outlets] for period, (sales, outlets) in state.targets.items()],
        "seen": [[event_id, at] for event_id, at in state.seen.items()],
        "episodes": [{"key": key, **vars(e)} for key, e in state.episodes.items()],
    }


def from_doc(doc: dict) -> DealerState:
    return DealerState(
        dealer_id=doc["_id"],
        first_seen=doc.get("first_seen"),
        latest=doc.get("latest"),
        last_visit_at=doc.get("last_visit_at"),
        sales=[(float(t), float(a)) for t, a in doc.get("sales", [])],
        promotions={p.pop("id"): Promotion(**p) for p in doc.get("promotions", [])},
        targets={period: (sales, outlets) for period, sales, outlets in doc.get("targets", [])},
        seen={event_id: at for event_id, at in doc.get("seen", [])},
        episodes={e.pop("key"): Episode(**e) for e in doc.get("episodes", [])},
    )


class StateStore:
    def __init__(self, settings: Settings):
        self._client = AsyncIOMotorClient(settings.mongo_url.get_secret_value(), tz_aware=True)
        self._collection = self._client[settings.mongo_db][COLLECTION]

    async def ping(self) -> bool:
        try:
            await self._client.admin.command("ping")
            return True
        except Exception:  # noqa: BLE001 - any failure means not ready
            return False

    async def load_all(self) -> dict[str, DealerState]:
        states = {}
        async for doc in self._collection.find({}):
            state = from_doc(doc)
            states[state.dealer_id] = state
        return states

    async def save_docs(self, docs: list[dict]) -> None:
        """Write dealer documents made by `to_doc` (one bulk write)."""
        if docs:
            await self._collection.bulk_write(
                [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in docs], ordered=False
            )

    def close(self) -> None:
        self._client.close()
