"""The performance regression gate: compares a short fixed run with a committed baseline."""
