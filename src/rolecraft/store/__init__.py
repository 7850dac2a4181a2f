"""Durable storage: characters, sessions and the parent-linked message tree.

SQLAlchemy keeps the database a configuration choice (SQLite by default, any
SQLAlchemy URL such as PostgreSQL works). Every write that belongs to one turn
happens in one transaction, so a killed process never leaves half a turn.
"""

from rolecraft.store.db import Store
from rolecraft.store.records import CharacterInfo, SessionInfo, StoredMessage

__all__ = ["CharacterInfo", "SessionInfo", "Store", "StoredMessage"]
