"""Importers: OSM extracts, users' grid polygons, household ledgers."""
