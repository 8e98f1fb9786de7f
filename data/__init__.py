"""Everything about getting data in and out: stores, importers, exporters, the shipped sample."""
