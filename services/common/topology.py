"""Exchanges, queues and routing keys: declared here once, used by every service.

    events exchange (topic)  --p<N>.#------------->  rules partition queue p<N> (quorum) --> the rules worker owning it
                             --*.visit.#, *.promotion.#, *.sale.#, ...-->  dealer-file queue (quorum) --> notify
                             --#----------------->  archive queue (quorum) --> notify (the events archive)
    alert-signals (topic)    --#----------------->  notify queue (quorum) --> notify service
    alerts (topic)           <-- every alert change, published by notify, for other systems
    dead-letter (fanout)     ------------------->  dead-letter queue (quorum, kept for inspection/replay)

An event's routing key starts with its dealer's partition (`p<N>.<type>.<dealer>`, see
partitions.py): each partition has its own queue, consumed by one rules worker at a time.

Work queues are quorum queues with a delivery limit, so that a message that
crashes its consumer is dead-lettered after a bounded number of deliveries
instead of looping. Handled failures are dead-lettered by the services with a
readable reason in the `x-dealerwatch-error` header.
"""

from __future__ import annotations

from dataclasses import dataclass

from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue

from .partitions import DEFAULT_PARTITIONS, partition_key, partition_of

ERROR_HEADER = "x-dealerwatch-error"
STAGE_HEADER = "x-dealerwatch-stage"
AT_HEADER = "x-dealerwatch-at"  # when it was dead-lettered
KIND_HEADER = "x-dealerwatch-queue"  # what a dead letter was: events, signals or deliveries


DELIVERY_LIMIT = 10  # deliveries of one message before the broker dead-letters it (crash loops)
SHORTSTR_BYTES = 255  # AMQP routing keys and message ids: bytes, not characters


def shortstr(text: str) -> str:
    """`text` cut to 255 bytes of UTF-8 at a character boundary (78 Chinese characters are
    234 bytes; a longer string makes the client refuse the whole publish)."""
    data = text.encode()
    return text if len(data) <= SHORTSTR_BYTES else data[:SHORTSTR_BYTES].decode(errors="ignore")


def routing_key(*parts: str) -> str:
    """Parts joined by `.`, dots inside a part (a dealer id) replaced by `_` so that binding
    patterns stay meaningful, cut to fit. Keys serve bindings, not identity: a cut key only routes."""
    return shortstr(".".join(part.replace(".", "_") for part in parts))


def event_routing_key(event_type: str, dealer_id: str, partitions: int) -> str:
    """`p<N>.<type>.<dealer>`, e.g. `p7.promotion.spend.D-001`: the partition first, so that a key
    cut to 255 bytes still routes to it."""
    return routing_key(partition_key(partition_of(dealer_id, partitions)), *event_type.split("."), dealer_id)


def alert_routing_key(severity: str, rule_id: str, dealer_id: str) -> str:
    return routing_key(severity, rule_id, dealer_id)


def evaluation_routing_key(dealer_id: str, of: str = "promotion") -> str:
    """Promotion and support evaluations travel with the alert signals (notify keeps them in the
    dealer file); so do the dealers' standings (`of="standing"`, the support priorities)."""
    return routing_key("evaluation", of, dealer_id)


@dataclass(frozen=True)
class Topology:
    namespace: str = "dealerwatch"
    partitions: int = DEFAULT_PARTITIONS
    # Safety net for consumers that crash mid-message (a crash loop); handled
    # failures are dead-lettered by the service itself before this is reached.
    delivery_limit: int = DELIVERY_LIMIT

    @property
    def events(self) -> RabbitExchange:
        return RabbitExchange(f"{self.namespace}.events", type=ExchangeType.TOPIC, durable=True)

    @property
    def alert_signals(self) -> RabbitExchange:
        return RabbitExchange(f"{self.namespace}.alert-signals", type=ExchangeType.TOPIC, durable=True)

    @property
    def alerts(self) -> RabbitExchange:
        """Every alert change, for other systems to subscribe to (key severity.rule.dealer)."""
        return RabbitExchange(f"{self.namespace}.alerts", type=ExchangeType.TOPIC, durable=True)

    @property
    def dead_letter(self) -> RabbitExchange:
        return RabbitExchange(f"{self.namespace}.dead-letter", type=ExchangeType.FANOUT, durable=True)

    def _work_queue(self, name: str) -> RabbitQueue:
        return RabbitQueue(
            f"{self.namespace}.{name}",
            queue_type=QueueType.QUORUM,
            durable=True,
            routing_key="#",
            arguments={
                "x-delivery-limit": self.delivery_limit,
                "x-dead-letter-exchange": self.dead_letter.name,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )

    def rules_queue(self, partition: int) -> RabbitQueue:
        """The events of one partition's dealers, consumed by the rules worker that owns it.
        Single active consumer: a quorum queue ignores `exclusive` on 3.10 (measured: two
        workers consumed one), so that two workers briefly claiming one partition never split
        its messages; the one whose epoch is older finds out at its next write and closes."""
        queue = self._work_queue(f"rules.p{partition}")
        queue.arguments = {**(queue.arguments or {}), "x-single-active-consumer": True}
        return queue

    @property
    def rules_queues(self) -> tuple[RabbitQueue, ...]:
        return tuple(self.rules_queue(p) for p in range(self.partitions))

    @property
    def notify_queue(self) -> RabbitQueue:
        return self._work_queue("notify.alert-signals")

    @property
    def dealer_file_queue(self) -> RabbitQueue:
        """Visits and visit plans, promotion events, sales, targets, the dealer's master data and its
        outlets, kept by notify for each dealer's file."""
        return self._work_queue("notify.dealer-file")

    DEALER_FILE_KEYS = (
        "*.visit.#",
        "*.promotion.#",
        "*.sale.#",
        "*.target.#",
        "*.dealer.#",
        "*.outlet.#",
        "*.feedback.#",
        "*.support.#",
    )

    @property
    def archive_queue(self) -> RabbitQueue:
        """Every accepted event, kept by notify in the events archive (common/archive.py)."""
        return self._work_queue("notify.archive")

    @property
    def dead_letter_queue(self) -> RabbitQueue:
        return RabbitQueue(f"{self.namespace}.dead-letter", queue_type=QueueType.QUORUM, durable=True, routing_key="")

    @property
    def exchanges(self) -> tuple[RabbitExchange, ...]:
        return (self.events, self.alert_signals, self.alerts, self.dead_letter)

    @property
    def queues(self) -> tuple[RabbitQueue, ...]:
        return (*self.rules_queues, self.notify_queue, self.dealer_file_queue, self.archive_queue, self.dead_letter_queue)


async def declare(broker: RabbitBroker, topology: Topology) -> None:
    """Declare every exchange, queue and binding (idempotent). Any service may call it, so that
    nothing published before its consumer first started is ever unroutable.
    A consuming service calls it after `broker.start()`: the broker keeps the first object it
    declared for a queue, and a consumer uses that object's channel; declared here first, every
    consumer of the process would share this one channel (and one consumer's `multiple` ack
    could settle another's messages)."""
    events = await broker.declare_exchange(topology.events)
    signals = await broker.declare_exchange(topology.alert_signals)
    dead = await broker.declare_exchange(topology.dead_letter)
    await broker.declare_exchange(topology.alerts)
    partitions = [(topology.rules_queue(p), events, [f"{partition_key(p)}.#"]) for p in range(topology.partitions)]
    for queue, exchange, keys in (
        *partitions,
        (topology.notify_queue, signals, ["#"]),
        (topology.dealer_file_queue, events, list(Topology.DEALER_FILE_KEYS)),
        (topology.archive_queue, events, ["#"]),
        (topology.dead_letter_queue, dead, [""]),
    ):
        declared = await broker.declare_queue(queue)
        for key in keys:
            await declared.bind(exchange, routing_key=key)
