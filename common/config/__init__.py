"""Settings: every name (topics, buckets, collections, env vars) and option, defined once.

The bottom layer: imports no other part of the project.
"""
