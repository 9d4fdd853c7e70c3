"""KV-cache managers over one block pool, the memory layout and KV sizing."""
