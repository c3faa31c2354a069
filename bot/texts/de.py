"""Built-in texts in German (the keys are `bot.texts.Builtin`'s values)."""

TEXTS = {
    "help": "Ich stelle ein paar kurze Fragen und teile unterwegs Nützliches. "
    "Tippe auf einen Button oder schreib deine Antwort (die Nummer einer Auswahl geht auch).\n"
    "/restart beginnt von vorn, /stop und ich schreibe dir nicht mehr, /forget löscht deine "
    "Daten.",
    "stale_press": "Dieser Button gehört zu einer früheren Frage. Hier sind wir gerade:",
    "stopped": "Erledigt. Du hörst nichts mehr von mir. Schick /start, falls du es dir anders "
    "überlegst.",
    "already_stopped": "Du bist abgemeldet. Schick /start, wenn du weitermachen möchtest.",
    "finished": "Wir sind fertig, danke! Schick /restart, um noch einmal durchzugehen.",
    "paused": "Ein Kollege ist jetzt in diesem Chat und antwortet gleich.",
    "welcome_back": "Willkommen zurück! Hier waren wir stehen geblieben:",
    "not_understood": "Das habe ich leider nicht verstanden. Tippe auf einen Button oder "
    "schreib eins davon: {labels} (oder die Nummer).",
    "understood": "Verstanden: {}.",
    "open": "Öffnen",
    "link_hint": "Tippe oben auf den Button, um es zu öffnen.",
    "booked": "Du bist angemeldet für {slot}. Hier ist die Kalendereinladung.",
    "reminder": "Erinnerung: {title} beginnt {when}, {slot}.",
    "in_minutes": "in {n} Minuten",
    "in_hours": "in {n} Stunden",
    "in_days": "in {n} Tagen",
    "forget_ask": "Damit lösche ich alles, was ich über dich weiß: deine Antworten und unseren "
    "ganzen Verlauf. Löschen?",
    "forget_yes": "Ja, alles löschen",
    "forget_no": "Nein, behalten",
    "forgotten": "Erledigt: Alles über dich ist gelöscht. Schick /start, wenn du irgendwann neu "
    "beginnen möchtest.",
    "kept": "Es wurde nichts gelöscht.",
}
