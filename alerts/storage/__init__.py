"""Persistence: SQLite by default, PostgreSQL for several workers; one schema, one Store."""

from .db import StorageError, connect, migrate
from .store import Ingested, NewDelivery, Store, open_store

__all__ = ["Ingested", "NewDelivery", "StorageError", "Store", "connect", "migrate", "open_store"]
