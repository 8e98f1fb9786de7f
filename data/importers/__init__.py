"""Importers: OSM (osm.py), grid polygons (grids.py), household ledgers (households.py)."""
