"""The one error a service's use cases and domain raise for what can never be done as asked.

It names no transport: the subscription it was raised under turns it into that transport's
outcome, in one place each. An event or a question is dead-lettered with the text as its reason
(shared/messaging.py `DeliveryRules`, shared/requests.py); a staff command is refused with the
text as the operator's answer, and audited as refused (shared/commands.py). A failure of any
other kind is retried (events) or reported as a failure pointing to the log (commands).
"""

from __future__ import annotations


class Refused(Exception):
    """What was asked can never be done as asked: an answer, not a failure.

    The text goes to whoever asked and into dead-letter headers: ids and field names, never
    personal data.
    """
