"""Persistence: SQLite by default, PostgreSQL for several workers; one schema, one owner per table.

`Outbox` owns the deliveries (outbox.py, statements in outbox.sql); `Store` the rest, and passes outbox
calls through for those who hold a Store.
"""

from .db import StorageError, connect, migrate
from .outbox import (
    SETTLE,
    Delivery,
    DeliveryState,
    NewDelivery,
    Outbox,
    answer_delivery_key,
    delivery_key,
    escalation_delivery_key,
)
from .store import Ingested, Store, open_store

__all__ = [
    "SETTLE",
    "Delivery",
    "DeliveryState",
    "Ingested",
    "NewDelivery",
    "Outbox",
    "StorageError",
    "Store",
    "answer_delivery_key",
    "connect",
    "delivery_key",
    "escalation_delivery_key",
    "migrate",
    "open_store",
]
