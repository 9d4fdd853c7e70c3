"""Performance providers behind one interface (provider.py), the one shard-shape rule and the profiler."""
