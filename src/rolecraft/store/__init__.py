"""Durable storage: characters, sessions and the parent-linked message tree.

SQLAlchemy keeps the database a configuration choice (SQLite by default, any
SQLAlchemy URL such as PostgreSQL works). Every write that belongs to one turn
happens in one transaction, so a killed process never leaves half a turn.
Numbered migrations (store/migrations) bring any database up to date on open;
everything stored has an owner (an API key id, or None for the local user).
"""

from rolecraft.store.db import Store
from rolecraft.store.records import CharacterInfo, SessionInfo, StoredMessage

__all__ = ["CharacterInfo", "SessionInfo", "Store", "StoredMessage"]
