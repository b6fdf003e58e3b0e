"""Scripts that build the embedded tokenizer and models (run as `python -m ...`)."""
