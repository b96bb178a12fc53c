"""`make bench`: hookyard measured side by side with the reference kit in ../shared/bench."""
