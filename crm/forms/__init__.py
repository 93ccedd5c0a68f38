"""Flask-WTF forms: field validation only, messages in French."""
