"""NEON-style viseme engine: see ``engine``."""
