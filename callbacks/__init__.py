"""Thin Dash callbacks: read inputs, call geo/ or data/, return layers and figures."""
