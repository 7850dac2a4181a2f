"""Native REST for characters: upload a card (PNG/JSON/CHARX), list, get, export, delete, lorebook, expressions."""
