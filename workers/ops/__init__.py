"""Operations run on demand from the API, the CLI and workers: replay, stats, retention."""
