"""The audionotes domain: settings, models, state machine and adapters to GCP.

Imports libraries only, never another part of the project.
"""
