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
    "email_invalid": "Eso no parece un correo electrónico. ¿Algo como nombre@empresa.com?",
    "phone_invalid": "Envía un número de teléfono con su prefijo de país, p. ej. +34 91 1234567.",
    "contact_not_yours": "Comparte tu propio número: toca el botón de abajo o escríbelo.",
    "number_needed": "Responde con un número",
    "number_out_of_range": "Ese número está fuera del rango",
    "range_between": "{what} entre {low} y {high}.",
    "range_at_least": "{what} de al menos {low}.",
    "range_at_most": "{what} de como mucho {high}.",
    "range_any": "{what}.",
    "text_empty": "Escribe tu respuesta, por favor.",
    "text_short": "¿Puedes contar un poco más? Al menos {n} caracteres, por favor.",
    "text_long": "Es un poco largo. Como mucho {n} caracteres, por favor.",
    "date_invalid": "Envía una fecha, p. ej. {example}, 3 dic o el próximo viernes.",
    "date_between": "Elige una fecha entre {low} y {high}.",
    "date_after": "Elige una fecha a partir del {low}.",
    "date_before": "Elige una fecha hasta el {high}.",
}
