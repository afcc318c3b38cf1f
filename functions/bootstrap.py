"""The composition root: builds adapters from Settings once per process, on first use."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from common.config.settings import Settings, get_settings
from common.domain.ports import BlobStore, JobStore, Publisher
from common.gcp.gcs import GcsBlobStore, IamSigner, KeySigner, Signer
from common.gcp.job_store import FirestoreJobStore
from common.gcp.pubsub import PubSubPublisher
from common.obs.logs import configure_logging


@dataclass(frozen=True)
class Services:
    """What every handler needs: settings and the three stores. The other bundles are named
    ``<Part>Services``: what one part needs besides (or instead of) these."""

    settings: Settings
    jobs: JobStore
    publisher: Publisher
    blobs: BlobStore


def build(settings: Settings) -> Services:
    signer: Signer | None = None
    if settings.signing_key_file:
        signer = KeySigner(settings.signing_key_file)
    elif settings.environment != "local":
        signer = IamSigner()
    return Services(
        settings=settings,
        jobs=FirestoreJobStore(settings.project, settings.collections.jobs),
        publisher=PubSubPublisher(settings.project, timeout_s=settings.limits.publish_timeout_s),
        blobs=GcsBlobStore(settings.project, signer=signer),
    )


@lru_cache(maxsize=1)
def services() -> Services:
    settings = get_settings()
    configure_logging(settings.log_level, settings.project)
    return build(settings)
