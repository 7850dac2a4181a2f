"""Native REST for stored sessions: create, history as a tree, turns, swipes, edits, branches, state."""
