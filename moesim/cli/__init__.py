"""Thin typer commands: files in, files out; user errors become one clear line."""
