"""Where ladderbot keeps things: conversations, the event log, timers, the outbox, flow versions.

The only code that talks to Redis; every key is built in `storage.keys`."""
