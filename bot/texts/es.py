"""Built-in texts in Spanish (the keys are `bot.texts.Builtin`'s values)."""

TEXTS = {
    "help": "Hago unas preguntas rápidas y comparto cosas útiles por el camino. "
    "Pulsa un botón o escribe tu respuesta (también vale el número de una opción).\n"
    "/restart empieza de nuevo, /stop y no te escribiré más, /forget borra tus datos.",
    "stale_press": "Ese botón es de una pregunta anterior. Aquí es donde estamos:",
    "stopped": "Hecho. No volverás a saber de mí. Envía /start si cambias de opinión.",
    "already_stopped": "Te has dado de baja. Envía /start si quieres retomarlo.",
    "finished": "¡Hemos terminado, gracias! Envía /restart para empezar otra vez.",
    "paused": "Un compañero está contigo en este chat y te responderá enseguida.",
    "welcome_back": "¡Hola de nuevo! Aquí lo dejamos:",
    "not_understood": "Perdona, no lo he entendido. Pulsa un botón o escribe una de estas "
    "opciones: {labels} (o su número).",
    "understood": "Entendido: {}.",
    "open": "Abrir",
    "link_hint": "Pulsa el botón de arriba para abrirlo.",
    "booked": "Tienes plaza para {slot}. Aquí tienes la invitación del calendario.",
    "reminder": "Recordatorio: {title} empieza {when}, {slot}.",
    "in_minutes": "en {n} minutos",
    "in_hours": "en {n} horas",
    "in_days": "en {n} días",
    "forget_ask": "Esto borra todo lo que sé de ti: tus respuestas y toda nuestra conversación. "
    "¿Lo borro?",
    "forget_yes": "Sí, borrar todo",
    "forget_no": "No, conservarlo",
    "forgotten": "Hecho: todo lo tuyo está borrado. Envía /start si algún día quieres empezar "
    "de nuevo.",
    "kept": "No se ha borrado nada.",
}
