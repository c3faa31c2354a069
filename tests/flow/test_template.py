"""Placeholders in texts and links."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from bot import engine
from bot.flow.compile import compile_flow
from bot.flow.loader import parse_flow
from bot.flow.template import render, render_url
from domain.model import Conversation, LinkButton, Say, Start, Text

CALCULATOR = """
flow: calculator
steps:
  - id: company
    kind: input
    ask: "Your company?"
    save_as: company
  - id: open
    kind: resource
    ask: "Your calculator:"
    url: "https://example.com/calculator?company={company}&utm_source={source}#top"
  - id: done
    kind: end
"""


def test_a_text_gets_the_value_as_it_is() -> None:
    assert render("Hi {name}, {missing}!", {"name": "Smith & Sons"}) == "Hi Smith & Sons, !"


def test_values_in_a_url_are_percent_encoded() -> None:
    url = render_url("https://example.com/c?company={company}&ref={ref}", {
        "company": "Smith & Sons #1&ref=evil",
        "ref": "telegram:42",
    })  # fmt: skip
    assert (
        url
        == "https://example.com/c?company=Smith%20%26%20Sons%20%231%26ref%3Devil&ref=telegram:42"
    )


def test_an_empty_value_leaves_no_dangling_parameter() -> None:
    template = "https://example.com/x.pdf?utm_source={source}&utm_medium=bot"
    assert render_url(template, {"source": ""}) == "https://example.com/x.pdf?utm_medium=bot"
    assert render_url("https://example.com/x.pdf?utm_source={source}", {}) == (
        "https://example.com/x.pdf"
    )
    assert render_url("https://example.com/{path}?a={a}#top", {"path": "a b", "a": ""}) == (
        "https://example.com/a%20b#top"
    )


def test_the_link_button_carries_the_encoded_answer() -> None:
    flow = compile_flow(replace(parse_flow(CALCULATOR, "calculator.yaml"), version=1))
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    conv = engine.step(
        flow, Conversation(id="telegram:1", flow="calculator", version=1), Start(), now
    )
    result = engine.step(flow, conv.conversation, Text("Smith & Sons #1&ref=evil"), now)
    (link,) = [b for a in result.actions if isinstance(a, Say) for b in a.buttons]
    assert isinstance(link, LinkButton)
    assert (
        link.url
        == "https://example.com/calculator?company=Smith%20%26%20Sons%20%231%26ref%3Devil#top"
    )
