"""What each FT-DeepNets notebook must glue (key -> check on the value); read by test_book.py."""

GLUED: dict[str, dict] = {}
