"""What people answer an invitation with, roughly: the replies posted by the webhook
benchmark and the load run (no import of the app: the load run sets its environment first)."""

# (text, weight)
BODIES = [
    ("oui", 20),
    ("Oui je serai là !", 8),
    ("Non merci", 10),
    ("non", 4),
    ("STOP", 6),
    ("c'est où ?", 12),
    ("ok 👍", 12),
    ("Je ne sais pas encore, je vous redis", 6),
    ("C'est à quelle heure ?", 8),
    ("START", 3),
    ("aide", 3),
]
UNKNOWN_SENDER_SHARE = 0.02  # a number no prospect has
