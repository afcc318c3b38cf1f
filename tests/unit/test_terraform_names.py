"""Terraform names things exactly as common/config/settings.py does, and sets only real settings.

Parses terraform/ with python-hcl2 (no Terraform needed) and checks, in the composition
module terraform/modules/audionotes (which the environment roots terraform/envs/* call):

* topic, subscription, dead-letter, job and collection names, and the bucket folders
  (uploads/, api-uploads/, jobs/, cache/), equal the Settings defaults;
* the Pub/Sub delivery numbers (ack deadline, max delivery attempts, backoff) equal Delivery(),
  and the pull workers' numbers (caps, ack deadline of the work subscriptions) equal Workers();
* every AUDIONOTES_* variable Terraform mentions is a real Settings field path, and the ones
  that carry names point at the matching entry of the names map;
* every function and job gets the required settings (project, buckets), each function its own
  settings, and secrets come only from Secret Manager.

and that every environment root is a thin caller of that module: its variables.tf is the
module's (a symlink), every input passed through unchanged, every output passed back.
"""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from typing import Any

import hcl2
import pytest
from pydantic import BaseModel, SecretStr

from common.config.settings import (
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    Delivery,
    FallbackAuth,
    FallbackStyle,
    LocalLlm,
    Settings,
    Tier,
    Workers,
)
from common.domain import local_llms
from common.domain.local_llms import DEFAULT_LOCAL_LLM, LOCAL_LLMS
from common.domain.whisper_models import CATALOG

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
COMPOSITION = TERRAFORM / "modules" / "audionotes"
ENV_ROOTS = sorted(p for p in (TERRAFORM / "envs").iterdir() if (p / "main.tf").is_file())
ENV_VAR = re.compile(rf"\b{ENV_PREFIX}[A-Z0-9_]+")

# On GCP, Eventarc owns the path from the inbox bucket to on_upload (its own notification,
# topic and subscription); these settings name the local stack's stand-ins (emulators/).
EVENTARC_OWNED = {
    "topics": {"inbox_events", "inbox_events_dead_letter"},
    "subscriptions": {"inbox_events", "inbox_events_dead_letter"},
}


def _settings() -> Settings:
    return Settings(project="x-proj1", buckets={"inbox": "in-bkt", "results": "out-bkt"})


def _load(path: Path) -> dict[str, Any]:
    with path.open() as f:
        return hcl2.load(f)


def _locals(module: Path = COMPOSITION) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in _load(module / "main.tf").get("locals", []):
        merged.update(block)
    return merged


def _blocks(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    """{name: body} of `module` or `variable` blocks."""
    return {name: body for block in doc.get(kind, []) for name, body in block.items()}


def _ref(text: str) -> str:
    """'${local.x}' -> 'local.x' (hcl2 wraps expressions in ${...})."""
    match = re.fullmatch(r"\$\{(.*)\}", text.strip())
    return match.group(1) if match else text


def optional_defaults(type_expr: str) -> dict[str, str]:
    """{attribute: default} of `optional(type, default)` attributes in an object type."""
    pattern = r'"?(\w+)"?\s*[:=]\s*"?(?:\$\{)?optional\(\w+,\s*("[^"]*"|[-\d.]+|true|false)\)'
    return {k: v.strip('"') for k, v in re.findall(pattern, type_expr)}


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _mentions_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_mentions_secret(a) for a in typing.get_args(annotation))


def settings_env_vars(
    model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX
) -> dict[str, tuple[bool, bool]]:
    """Every settable leaf as its env var name => (required, secret)."""
    found: dict[str, tuple[bool, bool]] = {}
    for name, field in model.model_fields.items():
        env = f"{prefix}{name.upper()}"
        if _is_model(field.annotation):
            for sub, (required, secret) in settings_env_vars(
                field.annotation, env + ENV_NESTED_DELIMITER
            ).items():
                found[sub] = (required and field.is_required(), secret)
        else:
            found[env] = (field.is_required(), _mentions_secret(field.annotation))
    return found


SETTINGS_ENV = settings_env_vars()
REQUIRED_ENV = {k for k, (required, _) in SETTINGS_ENV.items() if required}
SECRET_ENV = {k for k, (_, secret) in SETTINGS_ENV.items() if secret}


def _prefixes(settings: Settings) -> dict[str, str]:
    """The bucket folders Terraform's lifecycle rules and IAM conditions are written for."""
    b = settings.buckets
    return {
        "inbox_prefix": b.inbox_prefix,
        "results_prefix": b.results_prefix,
        "cache_prefix": b.cache_prefix,
        "api_upload_prefix": settings.auth.api_upload_prefix,
    }


# Env vars (after the prefix) that carry a folder, and their key in local.names.prefixes.
PREFIX_ENV = {
    "BUCKETS__INBOX_PREFIX": "inbox_prefix",
    "BUCKETS__RESULTS_PREFIX": "results_prefix",
    "BUCKETS__CACHE_PREFIX": "cache_prefix",
    "AUTH__API_UPLOAD_PREFIX": "api_upload_prefix",
}


def name_mismatches(names: dict[str, Any], settings: Settings) -> list[str]:
    """Differences between the composition module's `local.names` and the Settings defaults."""
    problems = []
    groups: dict[str, dict[str, Any]] = {
        "topics": settings.topics.model_dump(),
        "subscriptions": settings.subscriptions.model_dump(),
        "run_jobs": settings.run_jobs.model_dump(),
        "collections": settings.collections.model_dump(),
        "prefixes": _prefixes(settings),
    }
    for group, values in groups.items():
        expected = {
            k: v
            for k, v in values.items()
            if isinstance(v, str) and k not in EVENTARC_OWNED.get(group, set())
        }
        actual = names.get(group, {})
        if group == "collections":
            # Terraform needs only the collections it indexes; each must still match.
            expected = {k: v for k, v in expected.items() if k in actual}
        for key in sorted(expected.keys() | actual.keys()):
            tf, py = actual.get(key), expected.get(key)
            if tf != py:
                problems.append(f"{group}.{key}: terraform {tf!r} != settings {py!r}")
    return problems


# hcl2 quotes a map inside an expression with " or, in a conditional, with '.
_ASSIGNMENT = re.compile(rf"""(["'])({ENV_PREFIX}[A-Z0-9_]+)\1:\s*(["'])((?:(?!\3)[^\\]|\\.)*)\3""")


def env_assignments(value: Any) -> dict[str, str]:
    """{env var: expression} of an env local: a map, or an expression (a `for` or `merge`) over
    one that hcl2 leaves as text."""
    if isinstance(value, dict):
        return dict(value)
    return {var: expr for _, var, _, expr in _ASSIGNMENT.findall(value)}


def env_locals(module: Path = COMPOSITION) -> dict[str, dict[str, str]]:
    """Every `*_env` local (and `env`) of a module, by default the composition module, as
    {env var: expression}, including what it takes from other env locals
    (``merge(local.transcribe_env, {...})``)."""
    raw = {k: v for k, v in _locals(module).items() if k.endswith("_env") or k == "env"}

    def resolve(name: str, seen: frozenset[str] = frozenset()) -> dict[str, str]:
        value = raw[name]
        merged: dict[str, str] = {}
        if isinstance(value, str):
            for ref in re.findall(r"\blocal\.(\w+_env)\b", value):
                if ref in raw and ref not in seen:
                    merged.update(resolve(ref, seen | {name}))
        merged.update(env_assignments(value))
        return merged

    return {name: resolve(name) for name in raw}


def _all_strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in [k, *_all_strings(v)]]
    if isinstance(node, list):
        return [s for v in node for s in _all_strings(v)]
    return [node] if isinstance(node, str) else []


@pytest.fixture(scope="module")
def settings() -> Settings:
    return _settings()


def test_settings_env_vars_walks_nested_groups() -> None:
    assert {"AUDIONOTES_PROJECT", "AUDIONOTES_BUCKETS__INBOX", "AUDIONOTES_BUCKETS__RESULTS"} <= (
        REQUIRED_ENV
    )
    assert "AUDIONOTES_TOPICS__TRANSCRIPTION_REQUESTS" in SETTINGS_ENV
    assert "AUDIONOTES_TOPICS" not in SETTINGS_ENV  # groups are not leaves
    assert {"AUDIONOTES_AUTH__JWT_SECRET", "AUDIONOTES_LLM__OPENAI_API_KEYS"} <= SECRET_ENV


def test_both_environments_exist() -> None:
    assert {p.name for p in ENV_ROOTS} >= {"dev", "prod"}


def test_eventarc_owned_names_are_still_settings(settings: Settings) -> None:
    for group, keys in EVENTARC_OWNED.items():
        assert keys <= set(getattr(settings, group).model_dump()), group


def test_names_equal_settings_defaults(settings: Settings) -> None:
    assert name_mismatches(_locals()["names"], settings) == []


def test_a_renamed_topic_is_caught(settings: Settings) -> None:
    names = _locals()["names"]
    renamed = {**names, "topics": {**names["topics"], "transcripts_ready": "transcripts-done"}}
    assert name_mismatches(renamed, settings) == [
        "topics.transcripts_ready: terraform 'transcripts-done' != settings 'transcripts-ready'"
    ]
    dropped = {**names, "run_jobs": {"transcribe_gpu": "transcribe-gpu"}}
    assert name_mismatches(dropped, settings) == [
        "run_jobs.transcribe_cpu: terraform None != settings 'transcribe-cpu'"
    ]
    moved = {**names, "prefixes": {**names["prefixes"], "api_upload_prefix": "signed/"}}
    assert name_mismatches(moved, settings) == [
        "prefixes.api_upload_prefix: terraform 'signed/' != settings 'api-uploads/'"
    ]


def test_delivery_equals_settings() -> None:
    assert _locals()["delivery"] == Delivery().model_dump()


def test_pubsub_module_delivery_defaults_equal_settings() -> None:
    variables = _blocks(_load(TERRAFORM / "modules" / "pubsub" / "variables.tf"), "variable")
    declared = optional_defaults(variables["delivery"]["type"])
    assert {k: int(v) for k, v in declared.items()} == Delivery().model_dump()


def test_variable_defaults_equal_settings_defaults(settings: Settings) -> None:
    variables = _blocks(_load(COMPOSITION / "variables.tf"), "variable")
    assert variables["region"]["default"] == settings.region
    assert variables["job_retention_days"]["default"] == settings.limits.retention_days
    llm = optional_defaults(variables["llm"]["type"])
    assert llm["model"] == settings.llm.model
    assert float(llm["daily_budget_usd"]) == settings.llm.daily_budget_usd
    transcribe = optional_defaults(variables["transcribe"]["type"])
    assert int(transcribe["max_retries"]) == settings.executions.max_retries
    assert transcribe["batch_tier"] == settings.executions.batch_tier.value
    # Production defaults differ from the local ones on purpose (large-v3-turbo on the GPU
    # tier, baked into the image); they must name catalog models Terraform lets the image carry.
    after = re.split(r'"?default_models"?\s*[:=]', variables["transcribe"]["type"])[1]
    tiers = optional_defaults(after.split("})", 1)[0])
    assert set(tiers) == {tier.value for tier in Tier}
    assert tiers["gpu"] == "large-v3-turbo" and set(tiers.values()) <= set(CATALOG)
    assert int(transcribe["chunk_seconds"]) == settings.limits.chunk_seconds
    api = optional_defaults(variables["api"]["type"])
    assert int(api["rate_per_minute"]) == settings.auth.rate_per_minute
    assert int(api["rate_per_hour"]) == settings.auth.rate_per_hour
    # The CPU tier's task timeout is the settings' default; the GPU tier's stays under
    # Cloud Run's 1 h GPU limit, and Terraform tells dispatch the real number.
    cpu_tier = re.split(
        r'"?cpu"?\s*[:=]\s*"?(?:\$\{)?optional\(object', variables["transcribe"]["type"]
    )
    assert len(cpu_tier) == 2, "transcribe.cpu is not an optional object"
    assert (
        int(optional_defaults(cpu_tier[1])["timeout_s"]) == settings.executions.cpu_task_timeout_s
    )


def test_worker_defaults_equal_settings_defaults() -> None:
    """The caps and the workers' numbers default to Workers(); the GPU cap is held to the
    quota (0 until granted), so its default is Workers().max_gpu only once the quota allows."""
    w = Workers()
    variables = _blocks(_load(COMPOSITION / "variables.tf"), "variable")
    assert variables["gpu_quota"]["default"] == 0
    assert variables["max_gpu_workers"]["default"] is None
    assert variables["max_cpu_workers"]["default"] == w.max_cpu
    declared = optional_defaults(variables["workers"]["type"])
    assert declared.pop("mode") == w.mode.value
    assert {k: float(v) for k, v in declared.items()} == {
        k: float(getattr(w, k))
        for k in (
            "backlog_per_worker",
            "idle_s",
            "reserve_s",
            "ack_deadline_s",
            "poll_s",
            "scale_lease_s",
        )
    }
    workers = _ref(_locals()["workers"])
    assert f"min({w.max_gpu}, var.gpu_quota)" in workers, workers
    assert "var.max_cpu_workers" in workers and "var.workers" in workers
    # The pubsub module's own default is the same number.
    pubsub = _blocks(_load(TERRAFORM / "modules" / "pubsub" / "variables.tf"), "variable")
    assert pubsub["work_ack_deadline_s"]["default"] == w.ack_deadline_s


def test_work_ack_deadline_has_one_definition() -> None:
    """The work subscriptions' ack deadline and AUDIONOTES_WORKERS__ACK_DEADLINE_S are the same
    value (local.workers.ack_deadline_s), so a worker extends the deadline Pub/Sub applies."""
    call = _blocks(_load(COMPOSITION / "main.tf"), "module")["pubsub"]
    assert _ref(call["work_ack_deadline_s"]) == "local.workers.ack_deadline_s"
    env = env_locals()["transcribe_env"]["AUDIONOTES_WORKERS__ACK_DEADLINE_S"]
    assert _ref(env) == "tostring(local.workers.ack_deadline_s)"
    caps = env_locals()["scaling_env"]
    assert _ref(caps["AUDIONOTES_WORKERS__MAX_GPU"]) == "tostring(local.workers.max_gpu)"
    assert _ref(caps["AUDIONOTES_WORKERS__MAX_CPU"]) == "tostring(local.workers.max_cpu)"


def test_gpu_cap_is_held_to_the_quota() -> None:
    text = (COMPOSITION / "outputs.tf").read_text()
    assert "local.workers.max_gpu <= var.gpu_quota" in text
    description = _blocks(_load(COMPOSITION / "variables.tf"), "variable")["gpu_quota"]
    for phrase in (
        "zero",
        "IAM & Admin",
        "Quotas",
        "run.googleapis.com",
        "without zonal redundancy",
    ):
        assert phrase in description["description"], phrase


def _variable_text(name: str) -> str:
    """The source of one variable block of the composition module's variables.tf."""
    text = (COMPOSITION / "variables.tf").read_text()
    return text.split(f'variable "{name}" {{', 1)[1].split("\nvariable ", 1)[0]


def test_terraform_knows_the_model_catalog() -> None:
    text = _variable_text("transcribe")
    [names] = re.findall(r"contains\((\[[^\]]*\]), m\)", text)
    assert json.loads(names) == list(CATALOG)  # an HCL list of strings is JSON
    assert set(optional_defaults_list(text, "models")) <= set(CATALOG)


def test_terraform_knows_the_local_llm_catalog() -> None:
    text = _variable_text("local_llm")
    [names] = re.findall(r"contains\((\[[^\]]*\]), m\)", text)
    assert sorted(json.loads(names)) == sorted(LOCAL_LLMS)
    defaults = optional_defaults(text)
    assert defaults["model"] == DEFAULT_LOCAL_LLM == LocalLlm().model
    assert int(defaults["queue_depth"]) == LocalLlm().queue_depth
    module = _blocks(_load(TERRAFORM / "modules" / "llm_service" / "variables.tf"), "variable")
    assert module["queue_depth"]["default"] == LocalLlm().queue_depth


def test_local_llm_service_sets_only_local_llm_settings() -> None:
    """The model server reads LocalLlmService (AUDIONOTES_LOCAL_LLM__*); its image sets the
    model folder, Terraform the rest of what differs per deployment."""
    envs = env_locals(TERRAFORM / "modules" / "llm_service")
    service = envs["env"]
    assert set(service) == {
        f"{ENV_PREFIX}LOCAL_LLM{ENV_NESTED_DELIMITER}{f.upper()}"
        for f in ("model", "threads", "n_gpu_layers", "queue_depth")
    }
    assert set(service) <= set(SETTINGS_ENV)
    assert _ref(service["AUDIONOTES_LOCAL_LLM__QUEUE_DEPTH"]) == "tostring(var.queue_depth)"
    dockerfile = (REPO / "run_jobs" / "llm" / "Dockerfile").read_text()
    assert "AUDIONOTES_LOCAL_LLM__MODEL_DIR=/models" in dockerfile
    assert "run_jobs.llm.install --into /models" in dockerfile


def test_notes_fallback_to_the_local_llm_uses_settings_values() -> None:
    fallback = env_locals()["local_llm_env"]
    assert set(fallback) == {
        "AUDIONOTES_LLM__FALLBACK_BASE_URL",
        "AUDIONOTES_LLM__FALLBACK_MODEL",
        "AUDIONOTES_LLM__FALLBACK_STYLE",
        "AUDIONOTES_LLM__FALLBACK_AUTH",
        "AUDIONOTES_LLM__FALLBACK_REQUEST_TIMEOUT_S",
        "AUDIONOTES_LLM__FALLBACK_CHUNK_TOKENS",
    }
    assert fallback["AUDIONOTES_LLM__FALLBACK_CHUNK_TOKENS"] == str(local_llms.CHUNK_TOKENS)
    assert _ref(fallback["AUDIONOTES_LLM__FALLBACK_REQUEST_TIMEOUT_S"]) == (
        "tostring(var.local_llm.timeout_s)"
    )
    assert fallback["AUDIONOTES_LLM__FALLBACK_STYLE"] == FallbackStyle.JSON_SCHEMA.value
    assert fallback["AUDIONOTES_LLM__FALLBACK_AUTH"] == FallbackAuth.GOOGLE_ID_TOKEN.value
    assert fallback["AUDIONOTES_LLM__FALLBACK_BASE_URL"].endswith("/v1")
    # notes takes them on top of its own (merge(..., local.local_llm_env)).
    assert set(fallback) <= set(env_locals()["notes_env"])


def optional_defaults_list(text: str, name: str) -> list[str]:
    [raw] = re.findall(rf"\b{name}\s*=\s*optional\(list\(string\), (\[[^\]]*\])\)", text)
    return list(json.loads(raw))


def test_every_env_var_in_terraform_is_a_setting() -> None:
    mentioned: dict[str, set[str]] = {}
    for path in sorted(TERRAFORM.rglob("*.tf")) + sorted(TERRAFORM.rglob("*.tftest.hcl")):
        if ".terraform" in path.parts:
            continue
        for text in _all_strings(_load(path)):
            for var in ENV_VAR.findall(text):
                mentioned.setdefault(var, set()).add(str(path.relative_to(REPO)))
    assert mentioned, "no AUDIONOTES_* variable found: is the parser looking at terraform/?"
    unknown = {var: sorted(paths) for var, paths in mentioned.items() if var not in SETTINGS_ENV}
    assert unknown == {}


def test_env_locals_are_parsed() -> None:
    envs = env_locals()
    assert {"common_env", "api_env", "transcribe_env", "dispatch_env", "notes_env"} <= set(envs)
    assert all(envs.values()), {k: v for k, v in envs.items() if not v}
    assert envs["api_env"]["AUDIONOTES_AUTH__API_UPLOAD_PREFIX"] == (
        "${local.names.prefixes.api_upload_prefix}"
    )


def test_name_env_vars_point_at_the_matching_name() -> None:
    checked = 0
    for local, assignments in env_locals().items():
        for var, value in assignments.items():
            path = var.removeprefix(ENV_PREFIX)
            group, _, field = path.lower().partition(ENV_NESTED_DELIMITER)
            if group in {"topics", "subscriptions", "run_jobs", "collections"}:
                assert _ref(value) == f"local.names.{group}.{field}", (local, var)
                checked += 1
            elif path in PREFIX_ENV:
                assert _ref(value) == f"local.names.prefixes.{PREFIX_ENV[path]}", (local, var)
                checked += 1
    assert checked >= 4 + 4 + len(PREFIX_ENV)


def test_each_function_and_job_gets_its_own_settings() -> None:
    """The settings a component alone reads reach it through its own env local."""
    modules = _blocks(_load(COMPOSITION / "main.tf"), "module")
    by_entry_point = {
        (_ref(body["entry_point"]) if "$" in body["entry_point"] else body["entry_point"]): body
        for body in modules["functions"]["functions"].values()
    }
    expected = {
        "api": "local.api_env",
        "dispatch": "local.dispatch_env",
        "notes": "local.notes_env",
        "dead_letters": "local.dead_letters_env",
    }
    for entry_point, local in expected.items():
        assert _ref(by_entry_point[entry_point]["env"]) == local, entry_point
    assert "env" not in by_entry_point["on_upload"]  # common_env says all it reads
    # sweep scales the workers as dispatch does (functions/sweep.py ensure_workers).
    assert _ref(by_entry_point["sweep"]["env"]) == "local.sweep_env"
    for name, job in modules["run_jobs"]["jobs"].items():
        assert _ref(job["env"]) == "local.transcribe_env", name

    envs = env_locals()
    assert set(envs["transcribe_env"]) <= set(envs["dispatch_env"])
    assert set(envs["sweep_env"]) <= set(envs["dispatch_env"])
    # The image sets its cache; the models are where its bake puts them, for all to check.
    assert not {"AUDIONOTES_TRANSCRIPTION__CACHE_DIR"} & {
        var for env in envs.values() for var in env
    }
    assert envs["common_env"]["AUDIONOTES_TRANSCRIPTION__MODELS"].startswith("${jsonencode(")
    assert "/models/${m}" in envs["common_env"]["AUDIONOTES_TRANSCRIPTION__MODELS"]
    # Each component's own settings (their readers: functions/, common/llm, common/auth).
    assert {
        "AUDIONOTES_AUTH__API_UPLOAD_PREFIX",
        "AUDIONOTES_AUTH__RATE_PER_MINUTE",
        "AUDIONOTES_AUTH__RATE_PER_HOUR",
    } <= set(envs["api_env"])
    assert {
        "AUDIONOTES_EXECUTIONS__BATCH_TIER",
        "AUDIONOTES_TRANSCRIPTION__DEFAULT_MODELS",
        "AUDIONOTES_LIMITS__CHUNK_SECONDS",
    } <= set(envs["dispatch_env"])
    assert {"AUDIONOTES_LLM__MODEL", "AUDIONOTES_LLM__FALLBACK_BASE_URL"} <= set(envs["notes_env"])
    # dead_letters tells the step a dead letter was for by its source subscription.
    sources = ("DISPATCH", "NOTES", "WORK_HIGH", "WORK_NORMAL", "WORK_LOW")
    assert {f"AUDIONOTES_SUBSCRIPTIONS__{s}" for s in sources} <= set(envs["dead_letters_env"])
    # The pull workers: the worker reads its subscriptions, batch tier (which queues it serves)
    # and timing; dispatch and sweep read the mode, caps, packing and lease; dispatch alone
    # publishes to the work topics (run_jobs/transcribe/worker.py, functions/dispatch_work.py).
    worker = {
        f"AUDIONOTES_WORKERS__{f}" for f in ("IDLE_S", "RESERVE_S", "ACK_DEADLINE_S", "POLL_S")
    }
    scaling = {
        f"AUDIONOTES_WORKERS__{f}"
        for f in ("MODE", "MAX_GPU", "MAX_CPU", "BACKLOG_PER_WORKER", "SCALE_LEASE_S")
    }
    assert worker | scaling == {v for v in SETTINGS_ENV if v.startswith("AUDIONOTES_WORKERS__")}
    queues = {f"AUDIONOTES_SUBSCRIPTIONS__WORK_{p}" for p in ("HIGH", "NORMAL", "LOW")}
    assert worker | queues | {"AUDIONOTES_EXECUTIONS__BATCH_TIER"} <= set(envs["transcribe_env"])
    timeouts = {
        "AUDIONOTES_EXECUTIONS__GPU_TASK_TIMEOUT_S",
        "AUDIONOTES_EXECUTIONS__CPU_TASK_TIMEOUT_S",
    }
    for local in ("dispatch_env", "sweep_env"):
        assert scaling | timeouts <= set(envs[local]), local
    assert not scaling & set(envs["transcribe_env"])
    topics = {f"AUDIONOTES_TOPICS__WORK_{p}" for p in ("HIGH", "NORMAL", "LOW")}
    assert topics <= set(envs["dispatch_env"]) and not topics & set(envs["sweep_env"])
    collections = {
        f"AUDIONOTES_COLLECTIONS__{c.upper()}"
        for c in Settings.model_fields["collections"].default.model_dump()
    }
    assert collections <= set(envs["common_env"])


def test_required_settings_reach_every_function_and_job() -> None:
    env_locals = _locals()
    assert set(env_locals["common_env"]) >= REQUIRED_ENV, "common_env lacks a required setting"

    modules = _blocks(_load(COMPOSITION / "main.tf"), "module")
    for name in ("functions", "run_jobs"):
        assert _ref(modules[name]["common_env"]) == "local.common_env", name

    # ... and each module gives common_env to every function / job it creates.
    functions = _load(TERRAFORM / "modules" / "functions" / "main.tf")
    fn = _blocks(functions, "resource")["google_cloudfunctions2_function"]["this"]
    fn_env = _ref(fn["service_config"][0]["environment_variables"])
    assert fn_env.startswith("merge(var.common_env,"), fn_env

    run_jobs = _load(TERRAFORM / "modules" / "run_jobs" / "main.tf")
    job = _blocks(run_jobs, "resource")["google_cloud_run_v2_job"]["this"]
    container = job["template"][0]["template"][0]["containers"][0]
    env_sources = [_ref(d["env"]["for_each"]) for d in container["dynamic"] if "env" in d]
    assert "merge(var.common_env, each.value.env)" in env_sources, env_sources

    # The functions the design names, all six, each with the settings it alone needs.
    declared = modules["functions"]["functions"]
    entry_points = {
        _ref(body["entry_point"]) if "$" in body["entry_point"] else body["entry_point"]
        for body in declared.values()
    }
    assert entry_points == {"on_upload", "api", "dispatch", "notes", "dead_letters", "sweep"}


def test_every_deployed_entry_point_is_packaged_and_defined() -> None:
    """The source zip's root main.py imports every entry point Terraform deploys."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "package_functions", TERRAFORM / "package_functions.py"
    )
    assert spec and spec.loader
    package = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(package)
    declared = _blocks(_load(COMPOSITION / "main.tf"), "module")["functions"]["functions"]
    deployed = {
        _ref(body["entry_point"]) if "$" in body["entry_point"] else body["entry_point"]
        for body in declared.values()
    }
    assert set(package.ENTRY_POINTS) == deployed
    assert deployed <= package.defined_functions(REPO / "functions" / "main.py")
    root_main = package.root_main(list(package.ENTRY_POINTS))
    assert f"from functions.main import {', '.join(sorted(deployed))}" in root_main


def test_secrets_come_only_from_secret_manager() -> None:
    plain = {var for env in env_locals().values() for var in env}
    assert plain & SECRET_ENV == set(), "a secret setting is passed as a plain env var"

    declared = _blocks(_load(COMPOSITION / "main.tf"), "module")["functions"]["functions"]
    secret_env = {
        var
        for body in declared.values()
        for var in ENV_VAR.findall(str(body.get("secret_env", "")))
    }
    # Every secret setting is wired from Secret Manager (the fallback key when configured).
    assert secret_env == SECRET_ENV


def _composition_call(root: Path) -> dict[str, Any]:
    modules = _blocks(_load(root / "main.tf"), "module")
    assert list(modules) == ["audionotes"], f"{root.name}: one module call, to audionotes"
    call = modules["audionotes"]
    assert call["source"] == "../../modules/audionotes", root.name
    return call


@pytest.mark.parametrize("root", ENV_ROOTS, ids=lambda p: p.name)
def test_environment_root_shares_the_module_inputs(root: Path) -> None:
    # One declaration of every type, default and validation: the root's variables.tf is the
    # module's file, not a copy that could drift from it.
    assert (root / "variables.tf").is_symlink(), f"{root.name}: variables.tf must be a symlink"
    assert (root / "variables.tf").resolve() == (COMPOSITION / "variables.tf").resolve()
    # environment is the one input a root sets in code, so the shared file must not hold it.
    environment = _blocks(_load(COMPOSITION / "environment.tf"), "variable")
    assert list(environment) == ["environment"]
    assert "environment" not in _blocks(_load(COMPOSITION / "variables.tf"), "variable")


@pytest.mark.parametrize("root", ENV_ROOTS, ids=lambda p: p.name)
def test_environment_root_passes_every_input_through(root: Path) -> None:
    root_vars = _blocks(_load(root / "variables.tf"), "variable")
    call = _composition_call(root)
    args = {k: v for k, v in call.items() if k not in {"source", "depends_on"}}

    # The root names its environment; everything else is one of its variables, unchanged.
    assert _ref(args.pop("environment")) == "local.environment"
    assert _locals(root)["environment"] == root.name
    assert {k: _ref(v) for k, v in args.items()} == {k: f"var.{k}" for k in root_vars}


def test_composition_defaults_survive_a_null() -> None:
    # null in a tfvars means "unset": an input with a non-null default must not be nullable,
    # or null would replace the default.
    for name, body in _blocks(_load(COMPOSITION / "variables.tf"), "variable").items():
        if body.get("default") is not None:
            assert body.get("nullable") is False, f"{name}: add nullable = false"


@pytest.mark.parametrize("root", ENV_ROOTS, ids=lambda p: p.name)
def test_environment_root_passes_every_output_back(root: Path) -> None:
    module_outputs = _blocks(_load(COMPOSITION / "outputs.tf"), "output")
    root_outputs = _blocks(_load(root / "outputs.tf"), "output")
    assert {k: _ref(v["value"]) for k, v in root_outputs.items()} == {
        k: f"module.audionotes.{k}" for k in module_outputs
    }


@pytest.mark.parametrize("root", ENV_ROOTS, ids=lambda p: p.name)
def test_environment_root_has_an_empty_gcs_backend(root: Path) -> None:
    (terraform,) = _load(root / "versions.tf")["terraform"]
    assert terraform["backend"] == [{"gcs": {}}]


def test_indexed_job_fields_are_fields_of_the_job_model() -> None:
    """The composite indexes name job document fields (modules/firestore job_fields): each
    must be a field path of common.domain.jobs.Job (``coordination.batch_lane``: a field of
    its nested model), or an index would cover a field no query reads."""
    from common.domain.jobs import Job
    from common.gcp.job_store import LANE_FIELD, WORK_CHUNKS_FIELD, WORK_TIER_FIELD

    def is_job_field(path: str) -> bool:
        model: Any = Job
        for name in path.split("."):
            if not (isinstance(model, type) and name in getattr(model, "model_fields", {})):
                return False
            model = model.model_fields[name].annotation
        return True

    variables = _blocks(_load(TERRAFORM / "modules" / "firestore" / "variables.tf"), "variable")
    type_ = str(variables["job_fields"]["type"])
    fields = re.findall(r'optional\(string,\s*"([\w.]+)"\)', type_)
    assert {"owner", "state", "created_at", LANE_FIELD, WORK_TIER_FIELD, WORK_CHUNKS_FIELD} <= set(
        fields
    )
    assert [f for f in fields if not is_job_field(f)] == []
