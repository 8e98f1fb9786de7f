"""Minsheng Map (民生地图) application package: settings, i18n and the command line."""
