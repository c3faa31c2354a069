"""The lead card's Block Kit: everything a salesperson needs, within Slack's limits, no markup
injected by a prospect."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.app import Services
from bot.channels.slack import blocks as kit
from domain.model import Commitment, Conversation, Lead, Profile
from tests.channels.slack.support import alert_message
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack

# --- alerts ------------------------------------------------------------------------------------


async def test_an_alert_shows_everything_a_salesperson_needs(
    services: Services, fake_slack: FakeSlack
) -> None:
    message = await alert_message(services, fake_slack)
    [call] = fake_slack.calls("chat.postMessage")
    assert call.token == BOT_TOKEN and call.args["channel"] == "#sales-leads"
    shown = message.mrkdwn()
    assert "*Prospect*\nAnn Lee &lt;!channel&gt; (@annlee)" in shown  # escaped: no @channel
    assert message.text == "Lead: Ann Lee &lt;!channel&gt; said yes: email_given"
    assert "linkedin-ads" in shown  # source
    assert "• role: Founder" in shown and "• email: ann@example.com" in shown
    assert "_score" not in shown
    assert "*role_answered*" in shown and "*email_given*" in shown  # the ladder
    assert "<!date^1796115600^" in shown  # commitment times as Slack dates (2026-12-01 09:00)
    assert "*Lead score*\n15" in shown
    assert "Slack test ladder (`slack-test` v1)" in shown
    assert "said yes: email_given" in shown
    assert [b["action_id"] for b in message.buttons()] == [
        kit.CLAIM,
        kit.TAKE_OVER,
        kit.WON,
        kit.LOST,
        kit.NOT_A_FIT,
    ]
    assert {b["value"] for b in message.buttons()} == {"telegram:42"}


SLACK_MARKUP = re.compile(r"<!date\^\d+\^\{date_short\} \{time\}\|[^<>]*>|<@U\w+>")


@settings(max_examples=60, deadline=None)
@given(
    answers=st.dictionaries(st.text(min_size=1, max_size=40), st.text(max_size=900), max_size=12),
    name=st.text(max_size=300),
    commitments=st.lists(st.text(min_size=1, max_size=60), max_size=60),
)
def test_any_alert_fits_slack_limits_and_cannot_inject_markup(
    answers: dict[str, str], name: str, commitments: list[str]
) -> None:
    conv = Conversation(
        id="telegram:1", flow="f", version=2, step="s", answers=answers, profile=Profile(name),
        commitments=tuple(Commitment(c, c, "2026-12-01T09:00:00+00:00") for c in commitments),
        source="ads", lead=Lead(claimed_by="slack:U1"),
    )  # fmt: skip
    blocks = kit.alert_blocks(conv, ["completed", "score"], name, True)
    assert len(blocks) <= 50
    assert len(blocks[0]["text"]["text"]) <= 150  # header
    for block in blocks[1:]:
        texts = [f["text"] for f in block.get("fields", [])]
        assert all(len(t) <= 2000 for t in texts) and len(texts) <= 10
        if "text" in block:
            texts.append(block["text"]["text"])
            assert len(block["text"]["text"]) <= 3000
        texts += [e["text"] for e in block.get("elements", []) if e["type"] == "mrkdwn"]
        for text in texts:
            assert "<" not in SLACK_MARKUP.sub("", text), text
