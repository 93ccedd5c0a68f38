"""Outgoing SMS and e-mail behind one interface per channel."""
