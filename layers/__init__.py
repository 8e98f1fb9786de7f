"""Datasets and results turned into map layers: Plotly traces, folium layers, styles, legends."""
