"""The HTTP service (Litestar) and the `hookyard` command line."""
