"""Reading the keys steps of several kinds share: choices and their callback data, `go` routes
and their `if:` conditions, A/B variants, follow-ups, `save_as` and the commitment. Each kind's
own keys are read by its module in `bot.kinds`, with the same `StepReader`."""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.flow.grammar import (
    CHOICE_KEYS,
    FOLLOW_UP_KEYS,
    MAX_BUTTONS,
    MAX_CALLBACK_IDS,
    MAX_CAPTION,
    MAX_MEDIA_SOURCE,
    MAX_NUDGES,
    MAX_SCORE,
    MAX_SLUG,
    MAX_TEXT,
    MAX_VARIANTS,
    MAX_WEIGHT,
    QUIET_HOURS,
    ROUTE_KEYS,
    VARIABLE,
    VARIANT_KEYS,
)
from bot.flow.model import (
    COMPARISONS,
    Choice,
    Condition,
    FollowUp,
    Media,
    MediaKind,
    Nudge,
    Op,
    Route,
    Variant,
)
from bot.flow.nodes import NULL, Key, Reader, describe, suggest
from bot.flow.template import BUILTIN_VARIABLES
from domain.model import Outcome

_COMPARISONS = tuple(op.value for op in COMPARISONS)
OUTCOMES = tuple(o.value for o in Outcome)


def slug(label: str, fallback: str) -> str:
    """A choice id made from its label: lowercase ASCII letters, digits, '_' and '-'."""
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    made = re.sub(r"[^a-z0-9_-]+", "-", ascii_text.lower()).strip("-")[:MAX_SLUG].strip("-")
    return made or fallback


class StepReader(Reader):
    """Reads the shared step keys (and, through `Reader`, every typed value)."""

    def follow_up(
        self, node: Node, where: str, step: str | None, inherited: FollowUp | None
    ) -> FollowUp | None:
        """The short form (after/max/say) or the long form (nudges) -> FollowUp.

        A step's follow-up keeps the flow's quiet hours and staleness unless it sets its own;
        `follow_up: false` on a step switches follow-ups off there (a FollowUp with nothing)."""
        if isinstance(node, ScalarNode) and str(node.value).lower() == "false":
            return FollowUp(timezone=self.timezone) if step is not None else None
        fields = self.fields(node, where, FOLLOW_UP_KEYS)
        if fields is None:
            return None
        nudges = self.nudges(fields, node, where, step)
        quiet = inherited.quiet_hours if inherited else None
        if "quiet_hours" in fields:
            quiet = self.quiet_hours(fields["quiet_hours"].value, where)
        stale = inherited.stale_after if inherited else None
        if "stale_after" in fields:
            stale = self.duration(fields["stale_after"].value, where, "stale_after")
        drop = nudges[-1].after if nudges else None
        if "drop_after" in fields:
            drop = self.duration(fields["drop_after"].value, where, "drop_after")
        return FollowUp(
            nudges=tuple(nudges),
            drop_after=drop,
            quiet_hours=quiet,
            timezone=self.timezone,
            stale_after=stale,
        )

    def nudges(
        self, fields: dict[str, Key], node: Node, where: str, step: str | None
    ) -> list[Nudge]:
        if "nudges" in fields:
            for extra in ("after", "max", "say"):
                if extra in fields:
                    self.error(
                        fields[extra].key, where, f"`{extra}` and `nudges` do not mix: use one"
                    )
            found = []
            items = self.items(fields["nudges"].value, where, "nudges")
            if isinstance(fields["nudges"].value, SequenceNode) and not items:
                self.error(fields["nudges"].value, where, "`nudges` is empty")
            if not self.count(fields["nudges"].value, where, "nudges", items, MAX_NUDGES):
                return []
            for item in items:
                nudge = self.fields(item, f"{where}: nudge", ("after", "say"), ("after", "say"))
                if nudge is None or "after" not in nudge or "say" not in nudge:
                    continue
                after = self.duration(nudge["after"].value, where, "after")
                say = self.said(nudge["say"].value, where, "say", step)
                if after is not None and say is not None:
                    found.append(Nudge(after, say))
            return found
        if "after" not in fields or "say" not in fields:
            self.error(node, where, "needs `after` and `say` (or a `nudges` list)")
            return []
        after = self.duration(fields["after"].value, where, "after")
        items = self.items(fields["say"].value, where, "say")
        if not self.count(fields["say"].value, where, "say", items, MAX_NUDGES):
            return []
        says = [text for item in items if (text := self.said(item, where, "say", step)) is not None]
        count = len(says) or 1
        if "max" in fields:
            count = self.integer(fields["max"].value, where, "max", 1, MAX_NUDGES) or 0
        if after is None or not says or not count:
            return []
        return [Nudge(after, says[i % len(says)]) for i in range(count)]

    def quiet_hours(self, node: Node, where: str) -> tuple[int, int] | None:
        value = self.scalar(node, where, "quiet_hours", 'hours like "21:00-08:00"')
        if value is None:
            return None
        match = QUIET_HOURS.fullmatch(value)
        if match:
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            if h1 < 24 and h2 < 24 and m1 < 60 and m2 < 60 and (h1, m1) != (h2, m2):
                return h1 * 60 + m1, h2 * 60 + m2
        self.error(
            node,
            where,
            f'`quiet_hours` {value!r} should be two different times like "21:00-08:00" '
            "(24-hour clock, from-to)",
        )
        return None

    # --- shared step keys ---------------------------------------------------------------------

    def media(self, node: Node | None, where: str, step: str) -> Media | None:
        """`media: {image|video|document: <https URL or path in the flows folder>, caption}`."""
        if node is None:
            return None
        kinds = tuple(k.value for k in MediaKind)
        fields = self.fields(node, f"{where}: media", (*kinds, "caption"))
        if fields is None:
            return None
        given = [k for k in kinds if k in fields]
        if len(given) != 1:
            self.error(node, where, "`media` needs exactly one of image, video or document")
            return None
        value = fields[given[0]].value
        source = self.scalar(value, where, given[0], "an https URL or a file path")
        if source is None or not self.short(value, where, given[0], source, MAX_MEDIA_SOURCE):
            return None
        if not source.startswith("https://") and not inside_folder(source):
            self.error(
                value,
                where,
                f"media {source!r} should be an https URL or a path inside the flows folder, "
                "like media/intro.png",
            )
            return None
        caption = ""
        if "caption" in fields:
            caption = self.said(fields["caption"].value, where, "caption", step) or ""
            self.short(fields["caption"].value, where, "caption", caption, MAX_CAPTION)
        return Media(MediaKind(given[0]), source, caption, self.pos(value))

    def optional_text(self, node: Node | None, where: str, field: str, step: str) -> str | None:
        return self.said(node, where, field, step) if node is not None else None

    def save_as(self, node: Node | None, where: str) -> str | None:
        if node is None:
            return None
        value = self.name(
            node,
            where,
            "save_as",
            VARIABLE,
            "a variable name: lowercase letters, digits and '_', starting with a letter",
        )
        if value in BUILTIN_VARIABLES:
            self.error(node, where, f"{value!r} is a built-in variable: save under another name")
            return None
        return value

    def commitment(
        self,
        fields: dict[str, Key],
        default: tuple[str, int] | None,
        step_id: str,
        save_as: str | None,
        where: str,
    ) -> tuple[str | None, int]:
        """The name and score recorded when the prospect says yes here (`default`: the kind's
        name pattern and score; None: the kind records no commitment)."""
        if default is None:
            return None, 0
        pattern, score = default
        name = pattern.format(id=step_id, name=save_as or step_id)
        if "commitment" in fields:
            name = self.identifier(fields["commitment"].value, where, "commitment") or name
        if "score" in fields:
            found = self.integer(fields["score"].value, where, "score", 0, MAX_SCORE)
            score = score if found is None else found
        return name, score

    def variants(self, node: Node | None, where: str, step_id: str) -> tuple[Variant, ...]:
        if node is None:
            return ()
        variants: list[Variant] = []
        items = self.items(node, where, "variants")
        if not self.count(node, where, "variants", items, MAX_VARIANTS):
            return ()
        for item in items:
            fields = self.fields(item, f"{where}: variant", VARIANT_KEYS, required=("id", "ask"))
            if fields is None or "id" not in fields or "ask" not in fields:
                continue
            variant_id = self.identifier(fields["id"].value, where, "id")
            ask = self.said(fields["ask"].value, where, "ask", step_id)
            weight = 1.0
            if "weight" in fields:
                given = self.number(fields["weight"].value, where, "weight", most=MAX_WEIGHT)
                weight = given or 0.0
                if given is not None and given <= 0:
                    self.error(fields["weight"].value, where, "`weight` should be above zero")
            if variant_id is None or ask is None:
                continue
            if any(v.id == variant_id for v in variants):
                self.error(fields["id"].value, where, f"variant id {variant_id!r} is used twice")
                continue
            variants.append(Variant(variant_id, ask, weight))
        return tuple(variants)

    def outcome(self, node: Node, where: str, field: str) -> Outcome | None:
        """An outcome's name (an end step's `outcome`, the flow's `success`)."""
        value = self.scalar(node, where, field, "an outcome")
        if value is None:
            return None
        if value not in OUTCOMES:
            self.error(
                node,
                where,
                f"unknown outcome {value!r}{suggest(value, OUTCOMES)}; use one of "
                + ", ".join(OUTCOMES),
            )
            return None
        return Outcome(value)

    # --- choices and routes -------------------------------------------------------------------

    def choices(
        self,
        node: Node | None,
        where: str,
        step_id: str,
        extra: bool,
        others: tuple[str, int] = ("", 0),
    ) -> tuple[Choice, ...]:
        """Buttons; when `extra`, they are extra ways on (like "Skip") and record no commitment.
        `others`: the key and count of the buttons the step makes itself (a webinar's slots),
        which share the message with these."""
        if node is None:
            return ()
        made_by, made = others
        items = self.items(node, where, "choices")
        if isinstance(node, SequenceNode) and not items:
            self.error(node, where, "`choices` is empty")
        if len(items) + made > MAX_BUTTONS:
            listed = f"`choices` ({len(items)})" + (f" and `{made_by}` ({made})" if made else "")
            self.error(
                node,
                where,
                f"{listed} make too many buttons: a Telegram message holds at most {MAX_BUTTONS}",
            )
        choices: list[Choice] = []
        labels: set[str] = set()
        ids: set[str] = set()
        for index, item in enumerate(items):
            choice = self.choice(item, where, step_id, index, extra)
            if choice is None:
                continue
            label = choice.label.strip().casefold()
            if label in labels:
                self.error(item, where, f"choice {choice.label!r} is listed twice in this step")
                continue
            if choice.id in ids:
                self.error(
                    item,
                    where,
                    f"choice id {choice.id!r} is used twice in this step (give one an `id`)",
                )
                continue
            labels.add(label)
            ids.add(choice.id)
            choices.append(choice)
        return tuple(choices)

    def choice(
        self, node: Node, where: str, step_id: str, index: int, extra: bool
    ) -> Choice | None:
        if isinstance(node, ScalarNode):
            label = self.label(node, where, "choice")
            if label is None:
                return None
            made = slug(label, f"c{index + 1}")
            self.callback_fits(node, where, step_id, made)
            return Choice(made, label, label, commits=not extra, pos=self.pos(node))
        fields = self.fields(node, f"{where}: choice", CHOICE_KEYS, required=("label",))
        if fields is None or "label" not in fields:
            return None
        label = self.label(fields["label"].value, where, "label")
        if label is None:
            return None
        choice_id: str | None = slug(label, f"c{index + 1}")
        if "id" in fields:
            choice_id = self.identifier(fields["id"].value, where, "choice id")
        value = label
        if "value" in fields:
            value = self.scalar(fields["value"].value, where, "value", "text") or label
            self.short(fields["value"].value, where, "value", value, MAX_TEXT)
        commits = not extra
        if "commit" in fields:
            said = self.boolean(fields["commit"].value, where, "commit")
            if said and extra:
                self.error(
                    fields["commit"].value,
                    where,
                    f"choice {label!r}: buttons on this "
                    'kind of step are extra ways on (like "Skip") and record no '
                    "commitment; remove `commit: true`",
                )
            elif said is not None:
                commits = said
        routes = self.routes(fields["go"].value, where) if "go" in fields else ()
        if choice_id is None:
            return None
        self.callback_fits(fields.get("id", fields["label"]).value, where, step_id, choice_id)
        return Choice(choice_id, label, value, routes, commits, pos=self.pos(node))

    def callback_fits(self, node: Node, where: str, step_id: str, choice_id: str) -> None:
        used = len(step_id.encode()) + len(choice_id.encode())
        if used > MAX_CALLBACK_IDS:
            self.error(
                node,
                where,
                f"step id + choice id {choice_id!r} are {used} bytes; a "
                f"Telegram button fits {MAX_CALLBACK_IDS} (shorten one, or set the "
                "choice's `id`)",
            )

    def routes(self, node: Node | None, where: str) -> tuple[Route, ...]:
        """`go: step` or a conditional list `[{if: {...}, to: step}, ..., {to: step}]`."""
        if node is None:
            return ()
        if isinstance(node, ScalarNode) and node.tag != NULL:
            return (Route(to=str(node.value), pos=self.pos(node)),)
        if not isinstance(node, SequenceNode) or not node.value:
            got = "an empty list" if isinstance(node, SequenceNode) else describe(node)
            self.error(
                node,
                where,
                f"`go` should be a step id or a list of {{if, to}}, got {got}",
            )
            return ()
        routes: list[Route] = []
        for item in node.value:
            fields = self.fields(item, f"{where}: go", ROUTE_KEYS, required=("to",))
            if fields is None or "to" not in fields:
                continue
            target = self.scalar(fields["to"].value, where, "to", "a step id")
            conditions = self.conditions(fields["if"].value, where) if "if" in fields else ()
            if target is not None and conditions is not None:
                routes.append(Route(target, conditions, self.pos(fields["to"].value)))
        return tuple(routes)

    def conditions(self, node: Node, where: str) -> tuple[Condition, ...] | None:
        """`{var: value}` (equals), `{var: [a, b]}` (one of), `{var: {gte: 50}}` (compare),
        `{var: {set: true}}` (answered); several entries must all hold."""
        if not isinstance(node, MappingNode) or not node.value:
            self.error(
                node,
                where,
                f"`if` should be a mapping like {{role: Founder}}, got {describe(node)}",
            )
            return None
        found: list[Condition] = []
        for key, value in node.value:
            var = self.scalar(key, where, "if", "a variable name")
            if var is None:
                return None
            if isinstance(value, SequenceNode):
                options = [self.scalar(v, where, var, "text") for v in value.value]
                if not options or None in options:
                    self.error(value, where, f"`{var}`: list the values it may be")
                    return None
                found.append(Condition(var, Op.IN, tuple(o for o in options if o is not None)))
            elif isinstance(value, MappingNode):
                if not value.value:
                    self.error(value, where, f"`{var}`: say how to compare, like {{gte: 50}}")
                    return None
                tests = self.fields(value, f"{where}: if {var}", _COMPARISONS)
                if not tests:
                    return None
                for op, entry in tests.items():
                    bound = (
                        self.boolean(entry.value, where, op)
                        if op == Op.SET
                        else self.number(entry.value, where, op)
                    )
                    if bound is None:
                        return None
                    found.append(Condition(var, Op(op), bound))
            else:
                said = self.scalar(value, where, var, "a value")
                if said is None:
                    return None
                found.append(Condition(var, Op.EQ, said))
        return tuple(found)


def inside_folder(path: str) -> bool:
    """A relative path that stays inside its folder (no `..`, not absolute, no backslash)."""
    return not (PurePosixPath(path).is_absolute() or ".." in PurePosixPath(path).parts) and (
        "\\" not in path and ":" not in path
    )
