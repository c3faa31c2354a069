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
    "email_invalid": "Das sieht nicht nach einer E-Mail-Adresse aus. Etwa name@firma.de?",
    "phone_invalid": "Bitte schick eine Telefonnummer mit Ländervorwahl, z. B. +49 30 1234567.",
    "contact_not_yours": "Bitte teile deine eigene Nummer: tippe unten auf den Button oder "
    "schreib sie.",
    "number_needed": "Bitte antworte mit einer Zahl",
    "number_out_of_range": "Diese Zahl liegt außerhalb des Bereichs",
    "range_between": "{what} zwischen {low} und {high}.",
    "range_at_least": "{what} von mindestens {low}.",
    "range_at_most": "{what} von höchstens {high}.",
    "range_any": "{what}.",
    "text_empty": "Bitte schreib deine Antwort.",
    "text_short": "Magst du etwas mehr schreiben? Mindestens {n} Zeichen, bitte.",
    "text_long": "Das ist etwas lang. Höchstens {n} Zeichen, bitte.",
    "date_invalid": "Bitte schick ein Datum, z. B. {example}, 3 Dez oder nächsten Freitag.",
    "date_between": "Bitte wähle ein Datum zwischen {low} und {high}.",
    "date_after": "Bitte wähle ein Datum am oder nach dem {low}.",
    "date_before": "Bitte wähle ein Datum am oder vor dem {high}.",
}
