"""RAD-NeRF style audio-driven neural radiance field: hash grids, fields, volume rendering."""
