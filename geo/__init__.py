"""Pure analysis: GeoDataFrames and arrays in, GeoDataFrames and arrays out. No I/O, no Dash."""
