"""The local stack: every GCP piece audionotes uses, on one machine.

``python -m emulators up|down|status|env|reset`` (see ``__main__``). Imports ``common`` only
for shared names; nothing in ``common``, ``functions`` or ``run_jobs`` imports this package.
"""
