"""A flow's texts in more languages: `languages:`, `default_language:` and `translations:`.

The steps are written in the default language; `translations:` gives, per other language, the
texts of every step that says something (by step id) and the flow's follow-ups:

    translations:
      de:
        follow_up: ["Noch da, {first_name}?"]
        steps:
          role: {ask: "Was beschreibt dich am besten?", choices: [Gründer, Marketing]}

Choice ids and values stay those of the default language, so routes, saved answers and the
buttons' callback data are the same in every language. A missing text is a problem at its
step's translation (or at the language) with file, line and column."""

from __future__ import annotations

from dataclasses import replace

from yaml.nodes import MappingNode, Node

from bot.flow.grammar import LANGUAGE
from bot.flow.model import Choice, FollowUp, Nudge, Step, Translation, Variant
from bot.flow.nodes import Key, Reader, describe

STEP_TEXT_KEYS = ("say", "ask", "choices", "button", "hint", "variants", "follow_up")
LANGUAGE_KEYS = ("follow_up", "steps")


class Translator:
    """Reads `translations:` against the steps already read, with `reader`'s problem list."""

    def __init__(self, reader: Reader, steps: list[Step], default: str) -> None:
        self.reader = reader
        self.steps = steps
        self.default = default

    def language(self, node: Node, where: str, field: str) -> str | None:
        value = self.reader.scalar(node, where, field, "a language code")
        if value is not None and not LANGUAGE.fullmatch(value):
            self.reader.error(node, where, f"{value!r} is not a language code like en, de or es")
            return None
        return value

    def languages(self, node: Node) -> dict[str, Node]:
        """`languages: [en, de]` -> each language other than the default, with its node."""
        found: dict[str, Node] = {}
        for item in self.reader.items(node, "", "languages"):
            code = self.language(item, "", "languages")
            if code is not None and code != self.default:
                found[code] = item
        return found

    def read(
        self, languages: dict[str, Node], node: Node | None, follow_up: FollowUp | None
    ) -> dict[str, Translation]:
        """Every language's translation; each missing one is a problem."""
        given: dict[str, Key] = {}
        if node is not None:
            if not isinstance(node, MappingNode):
                self.reader.error(node, "translations", f"expected a mapping, got {describe(node)}")
            else:
                given = self.reader.fields(node, "translations", languages) or {}
        found: dict[str, Translation] = {}
        for language, declared in languages.items():
            if language not in given:
                self.reader.error(
                    declared, f"language {language!r}", "has no texts under `translations:`"
                )
                continue
            found[language] = self.translation(language, given[language].value, follow_up)
        return found

    def translation(self, language: str, node: Node, follow_up: FollowUp | None) -> Translation:
        where = f"translations.{language}"
        fields = self.reader.fields(node, where, LANGUAGE_KEYS) or {}
        flow_follow_up = follow_up
        if follow_up is not None and follow_up.nudges:
            flow_follow_up = self.follow_up(
                fields.get("follow_up"), node, where, follow_up, step=None
            )
        elif "follow_up" in fields:
            self.reader.error(fields["follow_up"].key, where, "the flow has no follow-ups")
        by_step: dict[str, Key] = {}
        steps_node = fields["steps"].value if "steps" in fields else None
        if steps_node is not None:
            ids = [s.id for s in self.steps]
            by_step = self.reader.fields(steps_node, f"{where}.steps", ids) or {}
        steps = tuple(
            self.step(step, by_step.get(step.id), steps_node or node, where) for step in self.steps
        )
        return Translation(steps=steps, follow_up=flow_follow_up)

    def step(self, step: Step, entry: Key | None, parent: Node, where: str) -> Step:
        """The step with its texts in the language; the default's where one is missing (and a
        problem is reported)."""
        where = f"{where}: step {step.id!r}"
        wanted = _texts_of(step)
        if not wanted:
            if entry is not None:
                self.reader.error(entry.key, where, "this step says nothing to translate")
            return step
        if entry is None:
            self.reader.error(parent, where, f"missing ({', '.join(wanted)})")
            return step
        fields = self.reader.fields(entry.value, where, wanted) or {}
        for key in wanted:
            if key not in fields:
                self.reader.error(entry.key, where, f"missing `{key}`")

        def text(key: str, default: str | None) -> str | None:
            if key not in fields or default is None:
                return default
            return self.reader.said(fields[key].value, where, key, step.id) or default

        changes: dict[str, object] = {
            "say": text("say", step.say),
            "ask": text("ask", step.ask),
            "button": self.label(fields.get("button"), where, step.button),
            "choices": self.choices(fields.get("choices"), where, step.choices),
            "variants": self.variants(fields.get("variants"), where, step),
        }
        if step.validator is not None:
            changes["validator"] = replace(step.validator, hint=text("hint", step.validator.hint))
        if step.follow_up is not None and step.follow_up.nudges:
            changes["follow_up"] = self.follow_up(
                fields.get("follow_up"), entry.value, where, step.follow_up, step.id
            )
        return replace(step, **changes)  # type: ignore[arg-type]

    def one_each(
        self, entry: Key, where: str, field: str, wanted: int, of: str
    ) -> list[Node] | None:
        """A list with one item for each of `wanted` things (None, and a problem, if not)."""
        items = self.reader.items(entry.value, where, field)
        if len(items) == wanted:
            return items
        self.reader.error(entry.value, where, f"`{field}` has {len(items)}; {of}: {wanted}")
        return None

    def label(self, entry: Key | None, where: str, default: str | None) -> str | None:
        if entry is None or default is None:
            return default
        return self.reader.label(entry.value, where, "button") or default

    def choices(
        self, entry: Key | None, where: str, choices: tuple[Choice, ...]
    ) -> tuple[Choice, ...]:
        """The choices' labels, in the order written; ids and values stay."""
        if entry is None:
            return choices
        items = self.one_each(entry, where, "choices", len(choices), "the step's choices")
        if items is None:
            return choices
        labels = [self.reader.label(item, where, "choice label") for item in items]
        return tuple(
            replace(c, label=label or c.label) for c, label in zip(choices, labels, strict=True)
        )

    def variants(self, entry: Key | None, where: str, step: Step) -> tuple[Variant, ...]:
        """`variants: {id: ask}` for each A/B variant of the step's ask."""
        if entry is None:
            return step.variants
        ids = [v.id for v in step.variants]
        fields = self.reader.fields(entry.value, f"{where}: variants", ids, required=ids) or {}
        return tuple(
            replace(v, ask=self.reader.said(fields[v.id].value, where, "ask", step.id) or v.ask)
            if v.id in fields
            else v
            for v in step.variants
        )

    def follow_up(
        self,
        entry: Key | None,
        at: Node,
        where: str,
        follow_up: FollowUp,
        step: str | None,
    ) -> FollowUp:
        """The follow-up's nudge texts, one per different text in the default language."""
        originals = list(dict.fromkeys(n.say for n in follow_up.nudges))
        if entry is None:
            self.reader.error(at, where, f"missing `follow_up` ({len(originals)} texts)")
            return follow_up
        items = self.one_each(entry, where, "follow_up", len(originals), "different texts")
        if items is None:
            return follow_up
        said = [self.reader.said(item, where, "follow_up", step) for item in items]
        mapped = {o: s or o for o, s in zip(originals, said, strict=True)}
        nudges = tuple(Nudge(n.after, mapped[n.say]) for n in follow_up.nudges)
        return replace(follow_up, nudges=nudges)


def _texts_of(step: Step) -> list[str]:
    """The translation keys this step needs (those with a text in the default language)."""
    has = {
        "say": step.say is not None,
        "ask": step.ask is not None,
        "choices": bool(step.choices),
        "button": step.button is not None,
        "hint": step.validator is not None and step.validator.hint is not None,
        "variants": bool(step.variants),
        "follow_up": step.follow_up is not None and bool(step.follow_up.nudges),
    }
    return [key for key in STEP_TEXT_KEYS if has[key]]
