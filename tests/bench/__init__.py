"""Kinetic's performance benchmark: ``python -m tests.bench`` (``make bench``).

Each scenario measures Kinetic's code beside a raw baseline of the same shape on the same
embedded servers, and the run ends with one table of numbers, ratios and targets. It prints;
it never asserts, so a slow machine gives a report rather than a failure.
"""
