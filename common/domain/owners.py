"""Owners in object names: a folder per subject that carries no personal data."""

from __future__ import annotations

import hashlib


def subject_folder(subject: str) -> str:
    """The per-subject folder name of API uploads: no personal data in object names."""
    return hashlib.sha256(subject.encode()).hexdigest()[:32]
