"""The bounds of what one integrator, one dealer or one source can make dealerwatch keep, in one
place (docs/limits.md says the same for people). Ingest refuses at the door (422, naming the
limit) what rules could not keep; rules refuses, with the same reason, what still gets past the
door (two requests at once), so that no structure grows without a bound and none stalls a worker.
"""

from __future__ import annotations

# per dealer, in the rules state (one MongoDB document of at most 16 MiB)
MAX_PLANS = 20_000  # visit plans kept: open, missed, and done or cancelled within the lateness
MAX_OUTLETS = 20_000  # outlets kept: registered, and closed within the lateness
MAX_PROMOTIONS = 1_000  # promotions kept: open, and ended (or closed) within the last 90 days
MAX_SPENDS = 10_000  # spends counted per promotion (their ids are kept to count each once)
MAX_PROMOTION_DAYS = 366  # from starts_on to ends_on, both included
MAX_FEEDBACK = 10_000  # feedback items kept: unanswered, and answered within the lateness
MAX_SUPPORTS = 1_000  # support records kept: running, and ended within the last 90 days
MAX_SUPPORT_DAYS = 366  # from starts_on to ends_on, both included

# per rules partition: sources of history followed at once (judge.py); the oldest is let go
MAX_HISTORIES = 1_000

# what a dealer's kept subjects are counted as in its stored document (ingest reads them: kept.py)
COUNTED = {
    "plans": MAX_PLANS,
    "outlets": MAX_OUTLETS,
    "promotions": MAX_PROMOTIONS,
    "feedback": MAX_FEEDBACK,
    "supports": MAX_SUPPORTS,
}


class LimitReached(ValueError):
    """An event would make a dealer keep more than a bound allows; it is not counted."""
