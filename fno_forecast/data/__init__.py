"""Data layer: gridded files in, canonical `(time, channel, lat, lon)` float32 arrays out."""
