"""The Telegram channel (python-telegram-bot 22), one job a module:

- `updates`: reading an update (pure): its conversation, dedupe key, the prospect's profile;
- `buttons`: inline keyboards with signed callback data;
- `sender`: delivering messages, documents and invitations within the flood limits;
- `channel`: an update in, an engine event (or a /forget answer) out, the reply sent;
- `webhook`: POST /telegram/webhook for the web process; `polling`: getUpdates for `ladder run`;
- `transport`: the aiohttp transport python-telegram-bot talks through.
"""
