"""Outbound sync: the product's changes pushed to Exchange (the outbox worker and its tasks)."""
