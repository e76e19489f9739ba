"""Task loaders: prepared JSONL under data/ -> examples."""
