"""The benchmark report: a model of the comparisons, and writers for Markdown and PNG.

`model.build_report` computes every figure once from a results file; the
writers in `markdown` and `plots` only lay them out.
"""
