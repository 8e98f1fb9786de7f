"""Subcommands of `minsheng`, discovered by minsheng.cli (one module per command)."""
