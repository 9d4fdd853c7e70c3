"""The serving loop: requests, scheduling policies, KV managers, the loop and its reuse of iterations."""
