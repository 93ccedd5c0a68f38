"""The domain: one module per capability, no Flask request objects in here."""
