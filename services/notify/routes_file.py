"""The routes file: which receivers an alert reaches, as a tree of matchers (like Alertmanager's).

    version: 1
    receivers:
      ops:        {webhook: {url_env: DEALERWATCH_RECEIVER_OPS_URL}}   # secrets stay in the environment
      north-team: {webhook: {url_env: DEALERWATCH_RECEIVER_NORTH_URL}}
    route:
      receiver: ops                  # the default
      routes:
        - match: {severity: critical}
          receiver: ops
          continue: true             # also try the next siblings
        - match: {region: north}
          receiver: north-team
        - match: {assignee: li.na}   # the alert's assignee is a label too
          receiver: li-na-robot
    assign:                          # who investigates an alert whose rule names no owner
      - {match: {region: north}, to: li.na}
      - {match: {rule_id: sales-drop}, to: wang.fang}
    causes:                          # what a person picks when resolving (default: causes.py)
      - {id: stock-out, en: Stock-out, zh: 缺货}

An alert walks the tree depth first: a node applies if all its `match` labels equal the
alert's; its children are tried in order and the first that applies wins, unless it says
`continue`; a node none of whose children apply delivers to its own receiver.
Labels: severity, rule_id, dealer_id, assignee and the rule's labels (e.g. region). The first
`assign` entry whose `match` holds names the assignee of an alert whose rule gives no owner.

Secrets (URLs with tokens, signing secrets, SMTP credentials) are named, never written: the file
reads only environment variables starting with DEALERWATCH_RECEIVER_.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.common.durations import DURATION, seconds
from services.common.yamlsource import FileError, Lines, read, validated

from .causes import DEFAULT_CAUSES, Cause, with_other
from .channels import email, robots, webhook
from .channels.base import Channel, Context
from .channels.email import EmailConfig
from .channels.robots import RobotConfig
from .channels.webhook import WebhookConfig
from .matchers import Matchers

# every channel a receiver can name, with how it is built; a new channel is its module under
# channels/ and a line here and in ReceiverSpec (checked below to agree)
BUILDERS: dict[str, Callable[[str, Any, Context], Channel]] = {
    "webhook": webhook.build,
    "email": email.build,
    "wecom": robots.builder(robots.WeComChannel),
    "dingtalk": robots.builder(robots.DingTalkChannel),
    "feishu": robots.builder(robots.FeishuChannel),
    "slack": robots.builder(robots.SlackChannel),
}
CHANNEL_KINDS = tuple(BUILDERS)


class ReceiverSpec(BaseModel):
    """Exactly one channel."""

    model_config = ConfigDict(extra="forbid")
    webhook: WebhookConfig | None = None
    email: EmailConfig | None = None
    wecom: RobotConfig | None = None
    dingtalk: RobotConfig | None = None
    feishu: RobotConfig | None = None
    slack: RobotConfig | None = None

    @model_validator(mode="after")
    def _one_channel(self) -> ReceiverSpec:
        kinds = [k for k in CHANNEL_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a receiver needs exactly one of {', '.join(CHANNEL_KINDS)}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in CHANNEL_KINDS if getattr(self, k) is not None)

    def build(self, name: str, context: Context) -> Channel:
        return BUILDERS[self.kind](name, getattr(self, self.kind), context)


assert set(ReceiverSpec.model_fields) == set(BUILDERS), "every receiver field is a channel that can be built"


class Route(BaseModel):
    """Options left out are inherited from the parent route."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    match: dict[str, str] = Field(default_factory=dict)
    receiver: str | None = Field(default=None, description="Default: the parent's.")
    continue_: bool = Field(default=False, alias="continue")
    send_resolved: bool | None = Field(default=None, description="Also tell the receiver when the alert is resolved.")
    repeat_interval: str | None = Field(default=None, pattern=DURATION, description="Remind while the alert stays open.")
    escalate_after: str | None = Field(
        default=None, pattern=DURATION, description="Critical and not acknowledged by then: escalate."
    )
    escalate_to: list[str] | None = Field(default=None, description="Receivers of the escalation.")
    group_wait: str | None = Field(
        default=None, pattern=DURATION, description="New alerts for the receiver within one such window go out as one message."
    )
    routes: list[Route] = Field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """What one route asks for an alert: its receiver and the options in force there."""

    receiver: str
    send_resolved: bool = False
    repeat_seconds: float | None = None
    escalate_after_seconds: float | None = None
    escalate_to: tuple[str, ...] = ()
    group_seconds: float | None = None


class Assignment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    match: dict[str, str] = Field(min_length=1)
    to: str = Field(min_length=1, max_length=128, description="Who investigates the alerts it matches.")


class RoutesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=1)
    receivers: dict[str, ReceiverSpec] = Field(min_length=1)
    route: Route
    assign: list[Assignment] = Field(default_factory=list, max_length=1000)
    causes: list[Cause] = Field(default_factory=lambda: list(DEFAULT_CAUSES), min_length=1, max_length=100)

    @model_validator(mode="after")
    def _distinct_causes(self) -> RoutesSpec:
        ids = [c.id for c in self.causes]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"causes listed twice: {', '.join(repeated)}")
        return self

    @model_validator(mode="after")
    def _known_receivers(self) -> RoutesSpec:
        if self.route.receiver is None:
            raise ValueError("the top route needs a receiver (the default)")
        stack = [self.route]
        while stack:
            node = stack.pop()
            for name in [node.receiver, *(node.escalate_to or [])]:
                if name is not None and name not in self.receivers:
                    raise ValueError(f"route receiver {name!r} is not among receivers: {', '.join(self.receivers)}")
            stack.extend(node.routes)
        return self


class RoutesError(FileError):
    """The routes file is refused."""


@dataclass(frozen=True)
class RoutesFile:
    spec: RoutesSpec
    source: str
    lines: Lines  # where each part of the file is (a receiver that cannot be built is named by its line)

    def receiver_line(self, name: str) -> int | None:
        return self.lines.get(("receivers", name))


def load(path: str) -> RoutesFile:
    text, source = read(path)
    return loads(text, source)


def loads(text: str, source: str = "<routes>") -> RoutesFile:
    spec, lines = validated(text, source, RoutesSpec, RoutesError, shape="a mapping with receivers and route")
    return RoutesFile(spec, source, lines)


def assignee_for(spec: RoutesSpec, labels: dict[str, str]) -> str | None:
    """The first `assign` entry that matches the alert's labels names its assignee."""
    return next((a.to for a in spec.assign if Matchers.of(a.match).matches_labels(labels)), None)


def causes_of(spec: RoutesSpec | None) -> tuple[Cause, ...]:
    return with_other(spec.causes) if spec is not None else DEFAULT_CAUSES


def receivers_for(spec: RoutesSpec, labels: dict[str, str]) -> list[str]:
    """The receivers an alert with these labels reaches, in order, without repeats."""
    return list(dict.fromkeys(plan.receiver for plan in plans_for(spec, labels)))


def plans_for(spec: RoutesSpec, labels: dict[str, str]) -> list[Plan]:
    top = Plan(spec.route.receiver or "")
    found = _walk(spec.route, labels, top)
    plans: dict[str, Plan] = {}
    for plan in found or [top]:
        plans.setdefault(plan.receiver, plan)
    return list(plans.values())


def _walk(node: Route, labels: dict[str, str], inherited: Plan) -> list[Plan] | None:
    if not Matchers.of(node.match).matches_labels(labels):
        return None
    here = Plan(
        receiver=node.receiver or inherited.receiver,
        send_resolved=inherited.send_resolved if node.send_resolved is None else node.send_resolved,
        repeat_seconds=seconds(node.repeat_interval) if node.repeat_interval else inherited.repeat_seconds,
        escalate_after_seconds=seconds(node.escalate_after) if node.escalate_after else inherited.escalate_after_seconds,
        escalate_to=tuple(node.escalate_to) if node.escalate_to is not None else inherited.escalate_to,
        group_seconds=seconds(node.group_wait) if node.group_wait else inherited.group_seconds,
    )
    result: list[Plan] = []
    for child in node.routes:
        found = _walk(child, labels, here)
        if found is not None:
            result += found
            if not child.continue_:
                break
    return result or [here]
