"""Running the production layout locally (make prod-local)."""
