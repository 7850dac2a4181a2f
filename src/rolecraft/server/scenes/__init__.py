"""Scenes for game NPCs over REST: cast and presence, player lines, events, game state, actions."""
