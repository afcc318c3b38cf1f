"""``python -m run_jobs.llm [--host H] [--port P]``: load the configured model once, serve.

Settings come from the environment (``AUDIONOTES_LOCAL_LLM__*``, common/config/settings.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from common.config.settings import LocalLlm, LocalLlmService
from common.domain.local_llms import LOCAL_LLMS
from common.obs.logs import configure_logging
from run_jobs.llm.model import LocalModel
from run_jobs.llm.server import ChatService, serve


def model_dir(settings: LocalLlm) -> Path:
    if settings.model_dir:
        return Path(settings.model_dir)
    return Path(sys.prefix) / "audionotes-models" / "llm"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args(argv)
    service_settings = LocalLlmService()
    configure_logging(service_settings.log_level)
    settings = service_settings.local_llm
    if settings.model not in LOCAL_LLMS:
        sys.exit(f"run_jobs.llm: unknown model {settings.model!r}; known: {sorted(LOCAL_LLMS)}")
    path = model_dir(settings) / LOCAL_LLMS[settings.model].file_name
    if not path.is_file():
        sys.exit(
            f"run_jobs.llm: {path} is missing; install it with "
            f"python -m run_jobs.llm.install --into {path.parent} --model {settings.model}"
        )
    model = LocalModel(
        path,
        model_id=settings.model,
        n_ctx=settings.n_ctx,
        threads=settings.threads,
        n_gpu_layers=settings.n_gpu_layers,
    )
    server = serve(ChatService(model, settings), args.host, args.port)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
