"""The ``rhythm`` engine (Chen et al., "Talking-head Generation with Rhythmic Head Motion", ECCV 2020, §4):
a 3-D-aware renderer from K reference frames. See ``engine.py``."""
