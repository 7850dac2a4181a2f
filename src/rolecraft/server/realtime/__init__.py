"""The realtime voice WebSocket, `/v1/realtime`: talk to a character, hear it answer (see `protocol`)."""
