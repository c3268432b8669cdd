"""Datasets: labelled line folders (``labels.tsv``), LMDB sets and the synthetic stream."""
