"""Inbound sync: what changes in Exchange, heard through change notifications (or polling)
and delta pulls, reconciled into reservations."""
