"""The built-in texts: every catalog has every text, with the same placeholders; the language
a prospect is spoken to in is their saved answer's, else their channel's, else the default."""

from __future__ import annotations

import string

import pytest

from bot.flow.model import Check, Validator
from bot.texts import CATALOGS, DEFAULT_LANGUAGE, Builtin, choose_language, text
from bot.validators import check


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


@pytest.mark.parametrize("language", sorted(CATALOGS))
def test_every_catalog_has_every_text_with_its_placeholders(language: str) -> None:
    catalog = CATALOGS[language]
    assert set(catalog) == {key.value for key in Builtin}
    for key in Builtin:
        assert catalog[key].strip(), key
        assert placeholders(catalog[key]) == placeholders(CATALOGS[DEFAULT_LANGUAGE][key]), key


def test_at_least_english_german_and_spanish() -> None:
    assert {"en", "de", "es"} <= set(CATALOGS)
    assert len({text(Builtin.HELP, language) for language in ("en", "de", "es")}) == 3
    assert text(Builtin.HELP, "fr") == text(Builtin.HELP, "en")  # no catalog: English


def test_the_saved_answer_comes_first_then_the_channel_then_the_default() -> None:
    offered = ("en", "de", "es")
    assert choose_language(("es", "de-AT"), offered, "en") == "es"
    assert choose_language(("", "de-AT"), offered, "en") == "de"
    assert choose_language(("Klingon", "PT_br"), offered, "en") == "en"
    assert choose_language(("", ""), offered, "de") == "de"


def test_answer_checks_hint_in_the_prospects_language() -> None:
    email, number = Validator(kind=Check.EMAIL), Validator(kind=Check.NUMBER, min=1, max=50)
    assert check(email, "nope", language="de").hint == text(Builtin.EMAIL_INVALID, "de")
    assert (
        check(number, "viele", language="de").hint
        == "Bitte antworte mit einer Zahl zwischen 1 und 50."
    )
    assert (
        check(number, "99", language="es").hint == "Ese número está fuera del rango entre 1 y 50."
    )
    assert check(number, "99").hint == "That number is out of range between 1 and 50."
    flows_own = Validator(kind=Check.NUMBER, hint="Nur die Zahl, z. B. 12.")
    assert check(flows_own, "viele", language="es").hint == "Nur die Zahl, z. B. 12."  # as given
