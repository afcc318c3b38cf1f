"""The edge: what meets the outside world. Caller authentication, SSRF-safe fetching of
audio URLs, content sniffing of uploads, and signed webhook delivery.

Independent of ``audio`` and ``notes``; below ``gcp``.
"""
