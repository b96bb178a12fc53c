"""Data shapes: wire types, tables, settings and migrations. Imports nothing of ours."""
