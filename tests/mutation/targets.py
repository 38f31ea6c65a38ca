"""What `make mutate` breaks and which tests must notice: the functions that carry the README's
safety promises, each with the tests that exercise them (a mutant runs only those, -x)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Equivalent:
    """A mutant no test can kill because it does not change behaviour: which, and why."""

    module: str  # or "*": any
    operator: str  # a regular expression over cosmic-ray's operator name
    line: str  # a regular expression the mutated line matches
    why: str


@dataclass(frozen=True)
class Target:
    module: str
    functions: frozenset[str]
    tests: tuple[str, ...]
    ci: frozenset[str] = frozenset()  # the functions the time-boxed CI run mutates


def target(module: str, functions: str, tests: str, ci: str = "") -> Target:
    return Target(module, frozenset(functions.split()), tuple(tests.split()), frozenset(ci.split()))


KEPT_TESTS = (
    "tests/rules/test_kept_outcomes.py tests/rules/test_rules_core.py::test_what_a_judgement_keeps_for_the_next_changes_no_output"
)

TARGETS = [
    # rules (#24): a support's end and what it counts, a rebate's measures
    target("services/rules/support.py", "bounds due measures running", "tests/rules/test_support_rules.py"),
    target("services/rules/incentives.py", "measures period_of apply", "tests/rules/test_support_rules.py"),
    # rules (#26): what a judgement keeps for the next changes no output (exhaustive = kept)
    target("services/rules/outcomes.py", "key __init__ _changes _crossing", KEPT_TESTS),
    target("services/rules/measures.py", "changed next_change", KEPT_TESTS),
    target("services/rules/core.py", "_quiet_tick", KEPT_TESTS),
    # ingest: 202 only once every event of the batch is confirmed by the broker
    target(
        "services/common/broker.py",
        "publish_confirmed publish_each publish_all_confirmed",
        "tests/ingest/test_publishing.py tests/ingest/test_ingest.py"
        " tests/e2e/test_poison.py::test_a_signal_the_broker_cannot_route_is_dead_lettered_after_its_attempts"
        " tests/rules/test_rules_service.py::test_a_dead_letter_the_broker_cannot_take_is_not_acked_and_arrives_once_it_can",
    ),
    target(
        "services/ingest/app.py",
        "post_events",
        "tests/ingest/test_ingest.py tests/ingest/test_publishing.py tests/e2e/test_access.py tests/e2e/test_event_time.py",
    ),
    # rules: every event counted once; publish -> save -> ack
    target(
        "services/rules/state.py",
        "knows forget_ids prune",
        "tests/rules/test_dedup.py tests/rules/test_rules_core.py",
        ci="knows",
    ),
    target(
        "services/rules/service.py",
        "_flush_once _publish on_message",
        "tests/rules/test_rules_service.py tests/rules/test_replay.py tests/rules/test_fencing.py tests/e2e/test_poison.py"
        " tests/e2e/test_readiness.py::test_rules_with_a_stuck_flush_is_not_ready_and_says_why",
    ),
    # consuming: acked only after the effect is durable, bounded retries, dead letters
    target(
        "services/common/consuming.py",
        "retry_or_reject settle ack_batch nack reject ack",
        "tests/common/test_consuming.py tests/notify/test_notify.py tests/rules/test_rules_service.py tests/e2e/test_poison.py",
        ci="settle",
    ),
    # notify: each alert write with its change, the outbox, delivery backoff, the lease
    target(
        "services/notify/store.py",
        "insert insert_many log_unlogged",
        "tests/notify/test_store.py tests/notify/test_inmemory.py",
        ci="insert",
    ),
    target("services/notify/changes.py", "record record_many after", "tests/notify/test_store.py tests/notify/test_stream.py"),
    target("services/notify/leader.py", "hold ensure", "tests/notify/test_store.py tests/notify/test_leader.py", ci="hold"),
    target(
        "services/notify/outbox.py",
        "record_deliveries due_reminder next_delivery_due next_schedule_due claim_group",
        "tests/notify/test_store.py tests/notify/test_escalation.py tests/notify/test_backoff.py",
    ),
    target(
        "services/notify/delivery.py",
        "_send _deliver run_schedules _claim_groups",
        "tests/notify/test_backoff.py tests/notify/test_escalation.py tests/notify/test_silences.py",
    ),
]

# the operators that make a mutant of a promise: a comparison turned round, a condition negated
# or swapped, a loop that never runs, an exception that is no longer caught, a sign flipped.
# (Every other comparison pair and number tweaks mostly make equivalent mutants of timeouts.)
OPERATORS = (
    r"core/(ReplaceComparisonOperator_(Eq_NotEq|NotEq_Eq|Lt_LtE|LtE_Lt|Gt_GtE|GtE_Gt|In_NotIn|NotIn_In|Is_IsNot|IsNot_Is)"
    r"|AddNot|ReplaceTrueWithFalse|ReplaceFalseWithTrue|ReplaceAndWithOr|ReplaceOrWithAnd|ReplaceBreakWithContinue"
    r"|ExceptionReplacer|ZeroIterationForLoop|ReplaceUnaryOperator_Delete_Not"
    r"|ReplaceBinaryOperator_(Add_Sub|Sub_Add|Mul_Div|Div_Mul))$"
)


UPSERT_RACE = (
    "not reachable here: two instances upserting one new alert at once; secantusdb serialises upserts"
    " (0 DuplicateKeyError in 240 concurrent upserts, measured): needs real MongoDB"
)

EQUIVALENT = [
    # outcomes.py (#26): mutants that only work more comparisons out (or the same ones): slower, not otherwise
    Equivalent(
        "services/rules/outcomes.py",
        "ReplaceComparisonOperator_Is_IsNot",
        r"if everything or since is None:",
        "`since` (the dealer's last judgement) is known whenever outcomes are: the mutant works everything out each time",
    ),
    Equivalent(
        "services/rules/outcomes.py",
        "ReplaceAndWithOr",
        r"if self\._at_midnight and t >=",
        "the month's comparisons worked out at every judgement, not only after a midnight",
    ),
    Equivalent(
        "services/rules/outcomes.py",
        "ReplaceComparisonOperator_LtE_Lt",
        r"since - SLACK <= at \+ after <= t \+ SLACK",
        "the slack (a second) reaches past both ends already: an outcome steps within a millionth of a second of the crossing",
    ),
    Equivalent(
        "services/rules/outcomes.py",
        "AddNot",
        r"if tests\[low\.bit_length\(\) - 1\]\(lookup\):",
        "every outcome inverted, kept ones too: still one key per outcome (the engine is asked by it with the measures)",
    ),
    Equivalent(
        "services/rules/outcomes.py",
        "ZeroIterationForLoop|AddNot",
        r"for side, other in \(\(node\.left|if isinstance\(side, ex\.Measure\) and isinstance\(other, ex\.Number\):",
        "no comparison taken as an age crossing a number: its age is then taken to change at any moment",
    ),
    Equivalent(
        "services/rules/measures.py",
        "ReplaceComparisonOperator_Lt_LtE",
        r"(and|if t < at and) \(best is None or at < best\):",
        "a tie keeps the same time; an edge's time equal to the judgement's own needs a rounded sum, and an event's time "
        "plus whole days is exact until 2038 (the same power of two)",
    ),
    Equivalent(
        "services/rules/measures.py",
        "ReplaceComparisonOperator_Gt_GtE",
        r"series\.times\[index\] \+ edge > t:  # \(not t",
        "an edge's time equal to the judgement's own needs a rounded sum: an event's time plus whole days is exact until 2038",
    ),
    Equivalent(
        "services/rules/measures.py",
        "ReplaceComparisonOperator_Lt_LtE",
        r"if since < first_seen \+ start <= t:",
        "a warm-up ending at the last judgement taken to end after it: its comparisons worked out again",
    ),
    Equivalent(
        "services/rules/measures.py",
        "ReplaceBinaryOperator_Add_Sub",
        r"if index < len\(times\) and times\[index\] \+ edge <= t:",
        "a window taken to have changed when it may not have: its comparisons worked out again",
    ),
    Equivalent(
        "services/rules/core.py",
        "ReplaceUnaryOperator_Delete_Not",
        r"^\s*not self\._rules\[\"dealer\"\]$",
        "a policy with dealer rules (every one tested) then never has a quiet deadline: each judged in full",
    ),
    Equivalent(
        "services/rules/core.py",
        "ReplaceFalseWithTrue",
        r"self\._judged\(state, False\)",
        "a quiet deadline taken as a day's first: its dealer's text codes compacted, which changes no value (stored as text)",
    ),
    Equivalent(
        "services/rules/outcomes.py",
        "ReplaceOrWithAnd",
        r"isinstance\(measure, Registered\) or|if isinstance\(measure, Latest\) or \(isinstance\(measure, Calendrical\)",
        "the measure taken to change more often than it does (at midnight, or at any moment)",
    ),
    Equivalent(
        "services/ingest/app.py",
        "ReplaceTrueWithFalse",
        r"write=True",
        "ingest has no read-only keys (readers=[]): the keys a read allows are the writers' keys",
    ),
    Equivalent(
        "*",
        "ReplaceBinaryOperator_Mul_Div",
        r", \*, |^\s*\*,$",
        "the `*` of keyword-only parameters becomes `/` (positional-only before it): every caller passes keywords",
    ),
    Equivalent(
        "services/rules/state.py",
        "ReplaceComparisonOperator_Lt_.*|AddNot",
        r"len\(self\.seen_ids\) < SEEN_SET_FROM",
        "a scan of the ids and their set give the same answer (#22: the set only makes it cost less)",
    ),
    Equivalent(
        "services/rules/state.py",
        "ReplaceComparisonOperator_Lt_LtE",
        r"min\(self\.seen_times\) < cutoff",
        "at equality the ids kept are computed and are the same (`at >= cutoff` keeps the one at the cutoff)",
    ),
    Equivalent(
        "services/rules/state.py",
        "ReplaceComparisonOperator_GtE_Gt",
        r"if at >= cutoff\]",
        "an id exactly at the cutoff (lateness + a day before the dealer's time) can only come back too late: refused either way",
    ),
    Equivalent(
        "services/rules/state.py",
        "ReplaceComparisonOperator_Lt_LtE",
        r"p\.ended_at < promotions_cutoff",
        "a promotion ended exactly 90 days ago: no event within the lateness bound can reach it",
    ),
    Equivalent(
        "services/notify/leader.py",
        "ReplaceComparisonOperator_Lt_LtE",
        r"time\.monotonic\(\) - self\._renewed_at < self\._seconds / 3",
        "differs only when the monotonic clock lands exactly on a third of the lease",
    ),
    *(
        Equivalent("services/notify/store.py", operator, line, UPSERT_RACE)
        for operator, line in (
            ("ExceptionReplacer", "except DuplicateKeyError"),
            ("ReplaceFalseWithTrue", "another instance inserted it first"),
        )
    ),
    Equivalent(
        "services/common/broker.py",
        "ReplaceUnaryOperator_Delete_Not|AddNot|ExceptionReplacer",
        r"if not cancelled_by_the_client\(exc\)|except asyncio\.CancelledError",
        "not reachable here: aiormq cancels a pending confirm only when a broker restart closes its channel (the"
        " fault suite, make chaos); a deleted exchange or a cut connection fail it with their own errors (tested)",
    ),
    Equivalent(
        "services/notify/delivery.py",
        "RemoveCallStatement|ReplaceBinaryOperator_Add_Sub",
        r"await asyncio\.sleep\(max\(0\.0, looked \+ SCHEDULE_SECONDS",
        "the pause bounds the database reads of reminders and escalations during a burst of new alerts; what is"
        " sent and when is the same (its cost is measured by bench/notify.py, not by a test)",
    ),
    Equivalent(
        "services/notify/delivery.py",
        "RemoveCallStatement",
        r"await wait_at_most\(self\._scheduled, wait\)",
        "without the wait for the next due time the scheduler looks every SCHEDULE_SECONDS (0.5 s) instead: the same"
        " reminders at the same times, more database reads (measured by bench/notify.py, not by a test)",
    ),
    Equivalent(
        "*",
        "ReplaceTrueWithFalse",
        r"strict=True\)",
        "zip(strict=True) only checks that lists built from the same list have the same length",
    ),
    Equivalent(
        "services/notify/store.py",
        "ReplaceFalseWithTrue",
        r"^\s*ordered=False,?\s*$|ordered=False\)",
        "ordered or not, the same writes of independent documents when none fails; the one that can fail (a"
        " duplicate key in a race of two instances) is not reachable here",
    ),
    Equivalent(
        "services/notify/store.py",
        "AddNot|ReplaceOrWithAnd|ExceptionReplacer|ReplaceComparisonOperator_NotEq_Eq",
        r'except BulkWriteError|error\.get\("code"\) != 11000',
        UPSERT_RACE,
    ),
    Equivalent(
        "services/rules/service.py",
        "AddNot|ZeroIterationForLoop",
        r"stored_epochs = await self\.store\.epochs\(list\(owned\)\) if owned else"
        r"|for number, partition in list\(owned\.items\(\)\):",
        "the epoch check before publishing only saves publishing the signals of a partition already taken: without"
        " it they go out as well (the same ones its next owner publishes, kept once by notify) and the write is"
        " fenced and the partition dropped after it (test_fencing)",
    ),
    Equivalent(
        "services/rules/service.py",
        "ReplaceComparisonOperator_GtE_Gt|ZeroIterationForLoop|ReplaceBinaryOperator_Sub_Add",
        r"wall - owned\[n\]\.clock_saved_at >= CLOCK_SAVE_SECONDS|for n in touched:",
        "how often a partition's clock is saved (at most every CLOCK_SAVE_SECONDS): more or fewer clock writes,"
        " the same judgements (a next owner waits for its queue a moment longer or shorter)",
    ),
    Equivalent(
        "services/rules/service.py",
        "RemoveCallStatement",
        r'self\._drop\(number, f"taken over by another worker',
        "a partition the flush finds taken is still dropped by the ownership round's own epoch check"
        " (_check_epochs) a moment later; nothing of it is published, stored or acked meanwhile (test_fencing:"
        " the worker that finds its partition taken before it publishes)",
    ),
    Equivalent(
        "services/notify/delivery.py",
        "ReplaceComparisonOperator_(Gt_GtE|LtE_Lt)",
        r'delivery\["next_attempt_at"\] (>|<=) now',
        "due now or a microsecond later: the same delivery, one look later at most",
    ),
    Equivalent(
        "services/notify/delivery.py",
        "RemoveCallStatement",
        r"self\._scheduled\.clear\(\)",
        "the wake-up left set makes the scheduler look every SCHEDULE_SECONDS (0.5 s): the same reminders at the"
        " same times, more database reads (bench/notify.py)",
    ),
    Equivalent(
        "services/rules/service.py",
        "ReplaceTrueWithFalse|AddNot",
        r"while True:  # the dealer's own deadlines first",
        "Judge.handle catches the dealer up itself; the loop only does it in rounds of TICKS_PER_ROUND with a turn"
        " for the event loop in between (tested: what happened between two events is judged)",
    ),
    Equivalent(
        "services/rules/service.py",
        "ReplaceComparisonOperator_IsNot_Is|AddNot",
        r"if self\.partitions\.get\(partition\.number\) is not partition:",
        "not reachable here: runs only when a dealer's catch-up needs more than TICKS_PER_ROUND (500) judgements",
    ),
    Equivalent(
        "services/rules/service.py",
        "ReplaceComparisonOperator_Lt_LtE",
        r"self\._wake_of\(partition\) < self\._clock_wake_at",
        "at equality the clock is woken once more: the same judgements",
    ),
    Equivalent(
        "services/rules/service.py",
        "RemoveCallStatement",
        r"self\._publish_failures\.pop\(message\[3\], None\)",
        "a published output's failure count stays in memory: output ids are not published again but by a replay"
        " of the same outputs",
    ),
    Equivalent(
        "services/notify/changes.py",
        "ReplaceBreakWithContinue|ReplaceComparisonOperator_Lt_LtE",
        r"break  # an earlier number|utcnow\(\) - doc\[\"at\"\] < dt\.timedelta",
        "past a young gap `expected` stays at the gap, so every later entry (younger still) is skipped as well;"
        " they differ only for an entry older than the one before it (instances whose clocks disagree)",
    ),
    Equivalent(
        "services/common/consuming.py",
        "ReplaceTrueWithFalse|ReplaceFalseWithTrue",
        r"async def n?ack\(self, .*\) -> None: \.\.\.",
        "a default in a Protocol's signature, which no code runs",
    ),
    Equivalent(
        "services/common/consuming.py",
        "ReplaceTrueWithFalse",
        r'message\.nack\(requeue=True\), message, "requeue the undead-lettered"',
        "not requeued, the message is dead-lettered by its quorum queue itself (at-least-once): kept until the"
        " dead-letter queue takes it, as when requeued (the test: it arrives once the queue is bound again)",
    ),
    Equivalent(
        "services/notify/delivery.py",
        "ExceptionReplacer",
        r"except Exception:\s*$",
        "an unexpected error of a delivery task: logged by asyncio instead of by the task, and the `finally`"
        " releases its slot and wakes the worker either way",
    ),
    Equivalent(
        "services/rules/service.py",
        "ReplaceFalseWithTrue",
        r"exc\.errors\(include_url=False\)",
        "include_url adds a `url` key to each error, which the reason (built from `loc` and `msg`) does not use",
    ),
]
