"""Test support (like JupySQL's ``sql/_testing.py``): shipped so tests, benchmarks, scripts and the
browser harness can import it without path tricks, never imported by the product itself."""
