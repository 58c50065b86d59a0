"""Dataset builders: each returns a DataBundle of splits the loop can batch."""
