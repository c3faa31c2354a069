"""Built-in texts in English (the keys are `bot.texts.Builtin`'s values)."""

TEXTS = {
    "help": "I ask a few quick questions and share useful things along the way. "
    "Tap a button or type your answer (the number of a choice works too).\n"
    "/restart starts over, /stop and I won't message you again, /forget erases your data.",
    "stale_press": "That button belongs to an earlier question. Here's where we are:",
    "stopped": "Done. You won't hear from me again. Send /start if you change your mind.",
    "already_stopped": "You're unsubscribed. Send /start if you'd like to pick up again.",
    "finished": "We're all done here, thank you! Send /restart to go through it again.",
    "paused": "A colleague is with you in this chat now and will answer shortly.",
    "welcome_back": "Welcome back! Here's where we left off:",
    "not_understood": "Sorry, I didn't catch that. Tap a button or type one of: {labels} "
    "(or its number).",
    "understood": "Got it: {}.",
    "open": "Open",
    "link_hint": "Tap the button above to open it.",
    "booked": "You're booked for {slot}. Here's the calendar invite.",
    "reminder": "Reminder: {title} starts {when}, {slot}.",
    "in_minutes": "in {n} minutes",
    "in_hours": "in {n} hours",
    "in_days": "in {n} days",
    "forget_ask": "This erases everything I know about you: your answers and our whole history. "
    "Erase it?",
    "forget_yes": "Yes, erase everything",
    "forget_no": "No, keep it",
    "forgotten": "Done: everything about you is erased. Send /start if you ever want to begin "
    "again.",
    "kept": "Nothing was erased.",
    "email_invalid": "That doesn't look like an email address. Something like name@company.com?",
    "phone_invalid": "Please send a phone number with its country code, e.g. +49 30 1234567.",
    "contact_not_yours": "Please share your own number: tap the button below, or type it.",
    "number_needed": "Please answer with a number",
    "number_out_of_range": "That number is out of range",
    "range_between": "{what} between {low} and {high}.",
    "range_at_least": "{what} of at least {low}.",
    "range_at_most": "{what} of at most {high}.",
    "range_any": "{what}.",
    "text_empty": "Please type your answer.",
    "text_short": "Could you say a bit more? At least {n} characters, please.",
    "text_long": "That's a little long. {n} characters at most, please.",
    "date_invalid": "Please send a date, e.g. {example}, 3 Dec, or next friday.",
    "date_between": "Please pick a date between {low} and {high}.",
    "date_after": "Please pick a date on or after {low}.",
    "date_before": "Please pick a date on or before {high}.",
}
