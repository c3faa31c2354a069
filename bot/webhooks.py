"""Outgoing webhooks: the domain events a CRM (or Zapier, n8n) asked for, signed per the
Standard Webhooks spec and delivered through the outbox.

The deployment names its endpoints in one YAML file (WEBHOOKS_FILE):

    webhooks:
      - name: crm                       # letters, digits, - and _: names its outbox items
        url: https://crm.example.com/hooks/ladder
        events: [committed, completed, claimed, won]
        secret_env: CRM_WEBHOOK_SECRET  # the variable holding its whsec_... secret

A step's events become outbox items (kind "webhook:<name>", one per endpoint and event) in the
step's atomic write, so none is lost; the item key names the event and the endpoint, so none is
delivered twice, and the `webhook-id` header stays the same across retries for the receiver to
spot the one in flight at a crash. 2xx is delivered; 408, 429, 5xx and network errors are
retried by the outbox; any other 4xx is dead-lettered with the receiver's answer.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml
from standardwebhooks import Webhook

from domain.errors import ConfigError, FlowError, FlowErrors, LadderError
from domain.model import Conversation, DomainEvent, EventName
from storage.base import OutboxItem
from storage.outbox import RetryLater, Undeliverable

KIND = "webhook"  # outbox items "webhook:<endpoint name>": a paused receiver pauses only itself
MIN_SECRET_BYTES = 24  # the Standard Webhooks spec: secrets of 24 to 64 random bytes
MAKE_A_SECRET = (
    "python -c \"import base64, secrets; print('whsec_' + "
    'base64.b64encode(secrets.token_bytes(32)).decode())"'
)
TIMEOUT = 10.0  # seconds for one POST; a timeout is retried
RETRIED = frozenset({408, 429})  # 4xx answers that mean "later", not "never"
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FIELDS = ("name", "url", "events", "secret_env")

Problem = Callable[[yaml.Node, str], None]  # reports a problem at a node


class WebhookFailed(LadderError):
    """The receiver did not take the delivery this time (5xx, 408, 429 without Retry-After)."""


@dataclass(frozen=True)
class Endpoint:
    """A receiver and the domain events it gets, signed with the secret in `secret_env`."""

    name: str
    url: str
    events: frozenset[str]
    secret_env: str


def parse(path: Path) -> tuple[Endpoint, ...]:
    """The endpoints of a webhooks file; FlowErrors naming file:line:col of every problem."""
    file = str(path)
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except OSError as exc:
        raise FlowErrors(
            [FlowError(f"cannot read the webhooks file: {exc.strerror}", file)]
        ) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise FlowErrors([FlowError(f"not valid YAML: {exc.problem}", file, line, col)]) from exc
    entry = _mapping(root).get("webhooks")
    if entry is None or not isinstance(entry[1], yaml.SequenceNode):
        node = entry[1] if entry else root
        line, col = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (1, 1)
        raise FlowErrors([FlowError("expected `webhooks:`, a list of endpoints", file, line, col)])
    errors: list[FlowError] = []

    def problem(node: yaml.Node, message: str) -> None:
        errors.append(
            FlowError(message, file, node.start_mark.line + 1, node.start_mark.column + 1)
        )

    found: list[Endpoint] = []
    names: set[str] = set()
    for node in entry[1].value:
        named = _mapping(node).get("name")
        if named is not None and isinstance(named[1], yaml.ScalarNode):
            if named[1].value in names:
                problem(named[1], f"a second endpoint named {named[1].value!r}: names are unique")
            names.add(named[1].value)
        if (endpoint := _endpoint(node, problem)) is not None:
            found.append(endpoint)
    if errors:
        raise FlowErrors(errors)
    return tuple(found)


def _mapping(node: yaml.Node | None) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """A mapping node's entries by key (key node, value node); {} for any other node."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _endpoint(node: yaml.Node, problem: Problem) -> Endpoint | None:
    """One list entry as an Endpoint; None (and its problems reported) if it is not one."""
    if not isinstance(node, yaml.MappingNode):
        problem(node, "an endpoint is a mapping: name, url, events, secret_env")
        return None
    entries = _mapping(node)
    for key, (key_node, _) in entries.items():
        if key not in _FIELDS:
            problem(key_node, f"unknown field {key!r}: an endpoint has {', '.join(_FIELDS)}")
    values: dict[str, Any] = {}
    for name in _FIELDS:
        if name not in entries:
            problem(node, f"the endpoint has no `{name}`")
            continue
        value = entries[name][1]
        if name == "events":
            values[name] = _events(value, problem)
        elif isinstance(value, yaml.ScalarNode) and str(value.value).strip():
            values[name] = str(value.value).strip()
            check = {"name": _name_problem, "url": _url_problem, "secret_env": _env_problem}[name]
            if (message := check(values[name])) is not None:
                problem(value, message)
                values.pop(name)
        else:
            problem(value, f"`{name}` should be a text")
    if len(values) < len(_FIELDS) or not values["events"]:
        return None
    return Endpoint(values["name"], values["url"], values["events"], values["secret_env"])


def _events(node: yaml.Node, problem: Problem) -> frozenset[str]:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        problem(node, "`events` should be a list of event names, e.g. [committed, completed]")
        return frozenset()
    names = set()
    for item in node.value:
        name = str(item.value) if isinstance(item, yaml.ScalarNode) else ""
        if name not in {e.value for e in EventName}:
            problem(item, f"unknown event {name!r}: one of {', '.join(sorted(EventName))}")
        else:
            names.add(name)
    return frozenset(names)


def _name_problem(name: str) -> str | None:
    if _NAME.match(name):
        return None
    return f"endpoint name {name!r}: use letters, digits, - and _ (at most 64)"


def _url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"not a URL the bot can POST to: {url!r} (https://host/path)"
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        return f"{url!r} is plain http: webhooks carry prospects' data, use https"
    return None


def _env_problem(name: str) -> str | None:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return None
    return f"secret_env {name!r} should name an environment variable, e.g. CRM_WEBHOOK_SECRET"


@dataclass(frozen=True)
class Webhooks:
    """The deployment's endpoints with their signing secrets (none: no webhooks)."""

    endpoints: tuple[Endpoint, ...] = ()
    secrets: Mapping[str, str] = field(default_factory=dict)  # endpoint name -> whsec_ secret

    @classmethod
    def configured(cls, path: Path | None, env: Mapping[str, str] | None = None) -> Webhooks:
        """WEBHOOKS_FILE's endpoints, each secret read from its variable; a missing or short
        secret is refused (ConfigError), a bad file reported at file:line:col (FlowErrors)."""
        if path is None:
            return cls()
        env = os.environ if env is None else env
        endpoints = parse(path)
        secrets = {e.name: _secret(e, env.get(e.secret_env, "")) for e in endpoints}
        return cls(endpoints, secrets)

    def hidden(self) -> list[str]:
        """What no log line may show: the secrets, and the URLs (a Zapier-style URL is one)."""
        return [*self.secrets.values(), *(e.url for e in self.endpoints)]

    def items(self, conv: Conversation, events: Sequence[DomainEvent]) -> list[OutboxItem]:
        """One outbox item per endpoint and event it wants, for the step that stores `conv`
        (read at revision `conv.revision`) with `events`."""
        items = []
        step = f"{conv.id}:{conv.revision + 1}"
        for n, event in enumerate(events):
            wanted = [e for e in self.endpoints if event.name in e.events]
            if not wanted:
                continue
            event_id = f"{step}:{n}"
            body = json.dumps(payload(event_id, event, conv), separators=(",", ":"))
            for endpoint in wanted:
                kind = f"{KIND}:{endpoint.name}"
                items.append(OutboxItem(kind, f"{event_id}:{endpoint.name}", body, conv.id))
        return items

    async def __call__(self, item: OutboxItem) -> None:
        """Deliver one webhook item: POST it, signed; raises for the outbox to retry
        (WebhookFailed, RetryLater, httpx errors) or dead-letter (Undeliverable)."""
        name = item.kind.partition(":")[2]
        endpoint = next((e for e in self.endpoints if e.name == name), None)
        if endpoint is None:
            raise Undeliverable(f"webhook {name!r} is not configured (WEBHOOKS_FILE)")
        event_id = item.key.removesuffix(f":{name}")
        sent_at = datetime.now(UTC)  # the receiver checks it against its own clock
        signature = Webhook(self.secrets[name]).sign(event_id, sent_at, item.body)
        headers = {
            "content-type": "application/json",
            "user-agent": "ladderbot",
            "webhook-id": event_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signature,
        }
        async with httpx.AsyncClient(timeout=TIMEOUT, verify=_tls()) as client:
            response = await client.post(endpoint.url, content=item.body, headers=headers)
        status = response.status_code
        if 200 <= status < 300:
            return
        answer = f"webhook {name}: HTTP {status} {response.reason_phrase}: {response.text[:200]}"
        if status == 429 and (wait := _retry_after(response)) is not None:
            raise RetryLater(answer, wait)
        if 400 <= status < 500 and status not in RETRIED:
            raise Undeliverable(answer)
        raise WebhookFailed(answer)


def payload(event_id: str, event: DomainEvent, conv: Conversation) -> dict[str, Any]:
    """The body: the Standard Webhooks shape ({type, timestamp, data}) with what a CRM needs to
    upsert the contact. `sequence` grows with each step of the conversation: a receiver keeps
    the highest it has seen, as deliveries of different events may arrive out of order."""
    return {
        "type": event.name,
        "timestamp": event.at,
        "data": {
            "id": event_id,
            "event": {"name": event.name, "step": event.step, "at": event.at, "data": event.data},
            "conversation": conv.id,
            "channel": conv.channel,
            "sequence": conv.revision + 1,
            "flow": conv.flow,
            "version": conv.version,
            "step": conv.step,
            "status": conv.status.value,
            "profile": vars(conv.profile),
            "answers": conv.answers,
            "commitments": [vars(c) for c in conv.commitments],
            "score": conv.score,
            "outcome": conv.outcome.value if conv.outcome else None,
            "source": conv.source,
            "lead": vars(conv.lead),
            "started_at": conv.started_at,
        },
    }


def _secret(endpoint: Endpoint, value: str) -> str:
    """The endpoint's secret, if it is a usable one: whsec_ and base64 of at least 24 bytes."""
    where = f"webhook {endpoint.name!r}: {endpoint.secret_env}"
    if not value:
        raise ConfigError(f"{where} is not set. Make a secret with: {MAKE_A_SECRET}")
    try:
        size = len(base64.b64decode(value.removeprefix("whsec_"), validate=True))
    except (binascii.Error, ValueError):
        size = 0
    if not value.startswith("whsec_") or size < MIN_SECRET_BYTES:
        raise ConfigError(
            f"{where} should be whsec_ and the base64 of at least {MIN_SECRET_BYTES} random "
            f"bytes (the Standard Webhooks form). Make one with: {MAKE_A_SECRET}"
        )
    return value


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (the numeric form), if the receiver sent one."""
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


@cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every delivery (loading the CA bundle is the costly part)."""
    return httpx.create_ssl_context()
