"""Slack for the sales team: lead alerts, their buttons (Claim, Take over, Hand back, Won, Lost,
Not a fit: each press becomes a `bot.sales` action), and the take-over relay both ways.

Modes (`mode.slack_mode`): "app" (SLACK_BOT_TOKEN: Web API alerts with buttons, POST
/slack/events), "webhook" (only SLACK_WEBHOOK_URL: alerts without buttons), "none" (alerts wait
in the outbox).
- `blocks`, `texts`: what Slack shows (Block Kit, thread lines, refusals), pure.
- `delivery`: the outbox handler for alerts and the prospect's relayed messages (`api`: Slack's
  answers in the outbox's terms).
- `listeners`, `events`: POST /slack/events on a slack-bolt AsyncApp; each button press, thread
  reply or `/ladder` command is one call to `bot.sales` or the funnel, and a redraw.
Where Slack's messages are is kept by `storage.slack`; who has the lead, in the conversation.
"""
