"""ladderbot: walk sales prospects up a ladder of micro-commitments."""
