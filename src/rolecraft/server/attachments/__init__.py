"""Native REST for attachments: the pictures and recordings stored with messages, by their SHA-256."""
