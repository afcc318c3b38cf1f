"""Cloud Functions: ``main.py`` names the entry points; the modules beside it handle them.

Entry points only convert (CloudEvent or HTTP request -> pydantic model), call the handler and
map domain errors to outcomes. Imports ``common`` only.
"""
