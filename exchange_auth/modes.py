"""The SPEC §3 mode table, written once: for an action, which credential acts,
which mailbox holds the meeting and who organizes it.

Plain values in, a plan out — no reservation models (exchange_auth imports no
other app of ours). ``reservations.rules`` and ``calendar_sync`` use it.

(Filled in by the exchange_auth work, issue 4.)"""
