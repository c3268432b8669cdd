"""Benchmarks that compare our recogniser with other engines on the same images and threads."""
