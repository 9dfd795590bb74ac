"""Chat backends behind one interface (see base.ChatBackend)."""
