"""Where results go: the risk-alerts topic, the audit table, the dead-letter topic, and the
linked accounts' fills that workers share.

Every sink is idempotent on a deterministic id, so at-least-once redelivery writes nothing twice.
"""

from riskstream.sinks.alerts import AlertPublisher, SendFn
from riskstream.sinks.audit import AuditLog, AuditWriter, audit_table
from riskstream.sinks.dead_letter import DeadLetterPublisher
from riskstream.sinks.linked_fills import LinkedFillPublisher

__all__ = [
    "AlertPublisher",
    "AuditLog",
    "AuditWriter",
    "DeadLetterPublisher",
    "LinkedFillPublisher",
    "SendFn",
    "audit_table",
]
