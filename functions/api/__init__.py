"""The HTTPS function ``api``: jobs in, status and results out (routes in ``routes.py``).

``api_services()`` builds the API's adapters once per process, on the first request, on top of
the shared composition root (``functions.bootstrap.services``).
"""

from __future__ import annotations

from functools import lru_cache

from common.edge.auth import Verifier
from common.edge.ssrf import UrlPolicy
from common.gcp.cloud_run import CloudRunLauncher
from common.gcp.rate_limit import RateLimiter, windows
from functions.api.service import ApiServices, Canceller
from functions.bootstrap import Services, services

__all__ = ["ApiServices", "api_services", "build_api"]


@lru_cache(maxsize=1)
def api_services() -> ApiServices:
    core = services()
    return build_api(core, canceller=CloudRunLauncher(core.settings))  # clients made on first use


def build_api(
    core: Services, *, canceller: Canceller, policy: UrlPolicy | None = None
) -> ApiServices:
    s = core.settings
    return ApiServices(
        core=core,
        verifier=Verifier(s.auth),
        limiter=RateLimiter(
            s.project,
            s.collections.rate_limits,
            windows(s.auth.rate_per_minute, s.auth.rate_per_hour),
        ),
        policy=policy or UrlPolicy.from_settings(s),
        canceller=canceller,
    )
