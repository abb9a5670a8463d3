"""Notification delivery: drains the ``notifications`` outbox to SMS, LINE, email and the citizen's web inbox.

The case workflows only write outbox rows; the dispatcher here sends them in its own loop, so a gateway that
is down delays messages but never a case or its clock.
"""
