"""The roster: which models battle, and how each is run (YAML in, ModelSpec out).

    defaults:                       # optional, merged under every entry
      sampling: {max_tokens: 256}
    models:
      - name: smollm2-greedy
        backend: transformers       # transformers | vllm | openai | recorded
        path: builtin:smollm2-135m-instruct
        sampling: {temperature: 0}
        constraint: auto            # judges: enforce the verdict format (auto|regex|json|none)
        trust_remote_code: false    # transformers/vllm: run the model repo's own Python (default off)
      - name: hosted
        backend: openai
        endpoint: https://api.example.com/v1
        api_key_env: EXAMPLE_API_KEY  # the key is read from this variable, never written here

Every mistake is one line naming the file, the entry and the field: an unknown
backend, a missing path, a typo'd key (with the closest valid key suggested), a
duplicate name, a value of the wrong type. Relative paths are read from the
roster's folder; `${VAR}` in paths and endpoints comes from the environment.
`load_roster("demo")` loads a packaged roster from arena_models/rosters/.

Security: `trust_remote_code` is false unless an entry sets it, so a model folder or hub
id cannot run its own Python on the workers by default. An API key never sits in a
roster: `api_key:` is refused, `api_key_env` must be a variable name, and an endpoint
carrying credentials (user:password@ or a query string) is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from arena_models.backends.base import ChatBackend, Sampling, pick_constraint
from arena_models.backends.openai_backend import OpenAIBackend
from core.config_files import did_you_mean, read_text_file
from core.errors import UserError

PACKAGED = Path(__file__).parent / "rosters"
COMMON = {
    "name": str,
    "backend": str,
    "sampling": dict,
    "system_prompt": str,
    "constraint": str,  # used when the entry judges; not a backend setting
}
# How a judge entry's verdict scores are read: written (discrete) or probability-weighted.
SCORINGS = ("discrete", "expected")
LOCAL = {
    "path": str,
    "dtype": str,
    "chat_template": str,
    "max_model_len": int,
    "scoring": str,  # judges only: expected needs the token probabilities local models give
    "trust_remote_code": bool,  # off unless set: a model repo's Python runs only if asked
}
FIELDS: dict[str, dict[str, type]] = {
    "transformers": {**COMMON, **LOCAL, "batch_size": int, "device": str},
    "vllm": {
        **COMMON,
        **LOCAL,
        "tensor_parallel_size": int,
        "enable_prefix_caching": bool,
        "enforce_eager": bool,
        "gpu_memory_utilization": float,
        "kv_cache_gib": float,
    },
    "openai": {
        **COMMON,
        "endpoint": str,
        "model": str,
        "api_key_env": str,
        "concurrency": int,
        "timeout": float,
        "retries": int,
        "max_wait": float,  # seconds a request may take, retries included
    },
    "recorded": {"name": str, "backend": str, "sampling": dict, "path": (str, list), "model": str},
}
REQUIRED = {"transformers": "path", "vllm": "path", "openai": "endpoint", "recorded": "path"}
# A literal key in a roster would reach fingerprints, manifests and version control.
_NO_KEY = (
    "api_key is not accepted in a roster; put the key in an environment variable"
    " and name it with api_key_env"
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Numbers a backend needs in range, and finite: a request's wait must end, a thread pool
# or a batch must hold one.
BOUNDS = {
    "concurrency": (lambda v: v >= 1, "at least 1"),
    "retries": (lambda v: v >= 0, "0 or more"),
    "timeout": (lambda v: v > 0, "a number of seconds > 0"),
    "max_wait": (lambda v: v > 0, "a number of seconds > 0"),
    "batch_size": (lambda v: v >= 1, "at least 1"),
    "max_model_len": (lambda v: v >= 1, "at least 1"),
    "tensor_parallel_size": (lambda v: v >= 1, "at least 1"),
    "kv_cache_gib": (lambda v: v > 0, "a number of GiB > 0"),
    "gpu_memory_utilization": (lambda v: 0 < v <= 1, "a fraction > 0 and <= 1"),
}
SAMPLING = {"temperature": float, "top_p": float, "max_tokens": int, "seed": int}
DTYPES = ("auto", "bfloat16", "float16", "float32")


@dataclass(frozen=True)
class ModelSpec:
    """One roster entry, checked. `options` are the backend's own settings, paths resolved."""

    name: str
    backend: str
    sampling: Sampling
    options: dict = field(default_factory=dict)

    @property
    def constraint(self) -> str:
        """How a judge on this entry enforces its reply format (auto: the backend's best)."""
        return self.options.get("constraint", "auto")

    @property
    def scoring(self) -> str:
        """How a judge on this entry scores: discrete (its written 1-10, the paper's) or
        expected (probability-weighted, local backends only)."""
        return self.options.get("scoring", "discrete")

    @property
    def resources(self) -> dict[str, float]:
        """Dask resources a task running this model must hold (a GPU slot per vLLM shard)."""
        if self.backend == "vllm":
            return {"GPU": float(self.options.get("tensor_parallel_size", 1))}
        return {}

    def fingerprint(self) -> str:
        """Hash of everything that shapes this model's answers (for answer caches)."""
        blob = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_roster(path: str | Path) -> list[ModelSpec]:
    """Read and check a roster file (or the name of a packaged roster, e.g. "demo")."""
    source = Path(path)
    if not source.exists() and (PACKAGED / f"{path}.yaml").exists():
        source = PACKAGED / f"{path}.yaml"
    if not source.is_file():
        known = ", ".join(sorted(p.stem for p in PACKAGED.glob("*.yaml")))
        raise UserError(f"roster {path}: no such file (packaged rosters: {known})")
    import yaml

    try:
        data = yaml.safe_load(read_text_file(source))
    except yaml.YAMLError as err:
        raise UserError(f"{source}: not valid YAML ({str(err).splitlines()[0]})") from err
    defaults: dict = {}
    if isinstance(data, dict):
        unknown = set(data) - {"models", "defaults"}
        if unknown:
            raise UserError(
                f"{source}: unknown top-level key {sorted(unknown)[0]!r}{did_you_mean(sorted(unknown)[0], ['models', 'defaults'])}"
            )
        defaults = data.get("defaults") or {}
        if isinstance(defaults, dict) and "api_key" in defaults:
            raise UserError(f"{source}: defaults: {_NO_KEY}")
        data = data.get("models")
    if not isinstance(data, list) or not data:
        raise UserError(f"{source}: expected a non-empty list of models (or `models:` with one)")
    if not isinstance(defaults, dict):
        raise UserError(f"{source}: `defaults` must be a mapping")
    specs: list[ModelSpec] = []
    seen: set[str] = set()
    for number, entry in enumerate(data, 1):
        spec = parse_entry(entry, number, source, defaults)
        if spec.name in seen:
            raise UserError(f"{source}: model {spec.name}: duplicate name (entry {number})")
        seen.add(spec.name)
        specs.append(spec)
    return specs


def parse_entry(entry, number: int, source: Path, defaults: dict | None = None) -> ModelSpec:
    """Check one roster entry and resolve its paths; UserError on the first problem."""
    if not isinstance(entry, dict):
        raise UserError(f"{source}: entry {number}: expected a mapping with name and backend")
    label = f"{source}: model {entry.get('name') or f'#{number}'}"
    backend = entry.get("backend")
    if backend not in FIELDS:
        raise UserError(
            f"{label}: backend {backend!r} is not one of {', '.join(FIELDS)}"
            + did_you_mean(str(backend), list(FIELDS))
        )
    defaults = {k: v for k, v in (defaults or {}).items() if k in FIELDS[backend]}
    merged = {
        **defaults,
        **entry,
        "sampling": {**defaults.get("sampling", {}), **(entry.get("sampling") or {})},
    }
    if "api_key" in merged:
        raise UserError(f"{label}: {_NO_KEY}")
    allowed = FIELDS[backend]
    for key, value in merged.items():
        if key not in allowed:
            raise UserError(
                f"{label}: unknown key {key!r} for backend {backend}{did_you_mean(key, list(allowed))}"
            )
        _check_type(label, key, value, allowed[key])
        if key in BOUNDS and not (math.isfinite(value) and BOUNDS[key][0](value)):
            raise UserError(f"{label}: {key} must be {BOUNDS[key][1]}, got {value!r}")
    if not merged.get("name"):
        raise UserError(f"{label}: missing name")
    need = REQUIRED[backend]
    if not merged.get(need):
        raise UserError(f"{label}: missing {need} (backend {backend} needs it)")
    if merged.get("dtype", "auto") not in DTYPES:
        raise UserError(f"{label}: dtype {merged['dtype']!r} is not one of {', '.join(DTYPES)}")
    sampling = _sampling(label, merged.pop("sampling"))
    if merged.get("scoring", "discrete") not in SCORINGS:
        raise UserError(
            f"{label}: scoring {merged['scoring']!r} is not one of {', '.join(SCORINGS)}"
        )
    if "constraint" in merged:
        pick_constraint(merged["constraint"], backend_class(backend).constraint_kinds, label)
    options = {k: v for k, v in merged.items() if k not in ("name", "backend")}
    _resolve_paths(options, source.parent, label)
    _check_paths(backend, options, label)
    return ModelSpec(str(merged["name"]), backend, sampling, options)


def backend_class(backend: str) -> type[ChatBackend]:
    """The class of a backend name (its module imports nothing heavy until used). The
    local and recorded backends are imported here, not above: they import pyarrow, which
    `arena battle --help` (it loads this module through pipeline.battle.config) does not."""
    if backend == "transformers":
        from arena_models.backends.transformers_backend import TransformersBackend  # lazy: pyarrow

        return TransformersBackend
    if backend == "vllm":
        from arena_models.backends.vllm_backend import VLLMBackend  # lazy: pyarrow

        return VLLMBackend
    if backend == "openai":
        return OpenAIBackend
    from arena_models.backends.recorded_backend import RecordedBackend  # lazy: pyarrow

    return RecordedBackend


def make_backend(spec: ModelSpec) -> ChatBackend:
    """The backend object for a spec. Cheap: engines and models load on first use."""
    # constraint and scoring say how the entry judges; the backend never sees them.
    options = {k: v for k, v in spec.options.items() if k not in ("constraint", "scoring")}
    if spec.backend == "recorded":
        return backend_class("recorded")(options.pop("path"), name=spec.name, **options)
    return backend_class(spec.backend)(name=spec.name, **options)


def _check_type(label: str, key: str, value, kind) -> None:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        return  # 1 is a fine float
    if isinstance(value, bool) and bool not in kinds:
        ok = False
    else:
        ok = isinstance(value, kinds)
    if not ok:
        names = " or ".join(k.__name__ for k in kinds)
        raise UserError(f"{label}: {key} must be {names}, got {value!r}")


def _sampling(label: str, values: dict) -> Sampling:
    for key, value in values.items():
        if key not in SAMPLING:
            raise UserError(
                f"{label}: unknown sampling key {key!r}{did_you_mean(key, list(SAMPLING))}"
            )
        _check_type(label, f"sampling.{key}", value, SAMPLING[key])
    sampling = Sampling(**{k: SAMPLING[k](v) for k, v in values.items()})
    if sampling.temperature < 0 or not 0 < sampling.top_p <= 1 or sampling.max_tokens < 1:
        raise UserError(
            f"{label}: sampling needs temperature >= 0, 0 < top_p <= 1, max_tokens >= 1"
        )
    return sampling


def _resolve_paths(options: dict, folder: Path, label: str) -> None:
    """Roster-relative paths become absolute; `${VAR}` is expanded; a chat template
    given as a file name is read."""
    for key in ("path", "endpoint"):
        value = options.get(key)
        if isinstance(value, list):
            options[key] = [_local(os.path.expandvars(v), folder) for v in value]
        elif isinstance(value, str) and not value.startswith("builtin:"):
            value = os.path.expandvars(value)
            options[key] = value if key == "endpoint" else _local(value, folder)
    template = options.get("chat_template")
    if template and "{{" not in template and "{%" not in template:
        file = Path(_local(template, folder))
        if not file.is_file():
            raise UserError(f"{label}: chat_template {template}: no such file")
        options["chat_template"] = read_text_file(file)


def _records_model(files: list[Path], model: str) -> bool:
    """Whether some answer row names `model` (a scan that stops at the first one)."""
    needle = json.dumps(model)
    for file in files:
        with open(file, encoding="utf-8", errors="replace") as f:
            for line in f:
                if model in line or needle in line:  # cheap before parsing
                    try:
                        if json.loads(line).get("model") == model:
                            return True
                    except (ValueError, AttributeError):
                        continue
    return False


def _check_paths(backend: str, options: dict, label: str) -> None:
    """Local files must exist now, not an hour into a run."""
    if backend == "recorded":
        from arena_models.backends.recorded_backend import expand_answer_files  # lazy: pyarrow

        try:
            files = expand_answer_files(options["path"])
        except UserError as err:
            raise UserError(f"{label}: path: {err}") from err
        if options.get("model") and not _records_model(files, options["model"]):
            # Else the backend finds no answers only once it loads, on a worker.
            raise UserError(f"{label}: no recorded answers of model {options['model']!r} in path")
    elif backend == "openai":
        env = options.get("api_key_env")
        if env is not None and not _ENV_NAME.fullmatch(env):
            # Not echoed: a value that is no variable name may be the key itself.
            raise UserError(
                f"{label}: api_key_env must name an environment variable (letters, digits, _),"
                " not hold the key"
            )
        from urllib.parse import urlsplit

        url = urlsplit(options["endpoint"])
        if "@" in url.netloc or url.query:
            raise UserError(
                f"{label}: endpoint must not carry credentials (user:password@ or a query);"
                " put the key in an environment variable and name it with api_key_env"
            )
        if not options["endpoint"].startswith(("http://", "https://")):
            raise UserError(
                f"{label}: endpoint {options['endpoint']!r} is not an http(s) URL"
                " (an environment variable in it may be unset)"
            )
    elif backend in ("transformers", "vllm"):
        path = options["path"]
        if Path(path).is_absolute() and not Path(path).exists():
            raise UserError(f"{label}: path {path} does not exist")
        if path.startswith("builtin:"):
            from arena_models.local_models import BUILTINS  # lazy: pyarrow

            if path[len("builtin:") :] not in BUILTINS:
                known = ", ".join(f"builtin:{k}" for k in sorted(BUILTINS))
                raise UserError(f"{label}: unknown model {path}; packaged: {known}")


def _local(value: str, folder: Path) -> str:
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    local = folder / path
    # A relative path that is not beside the roster may be a hub id: leave it.
    return str(local) if local.exists() or any(c in value for c in "*?[") else value


def pick_model(roster: str | Path | list[ModelSpec], name: str | None, flag: str = "--judge"):
    """The entry called `name` of a roster (a file, a packaged name, or loaded specs); with
    no name, the roster's only entry. A one-line UserError names the choices otherwise."""
    specs = roster if isinstance(roster, list) else load_roster(roster)
    where = "the roster" if isinstance(roster, list) else f"roster {roster}"
    names = ", ".join(s.name for s in specs)
    if name is None:
        if len(specs) == 1 and not isinstance(roster, list):
            return specs[0]
        raise UserError(f"name the model with {flag} (one of {names})")
    for spec in specs:
        if spec.name == name:
            return spec
    raise UserError(f"{flag} {name!r} is not in {where} (entries: {names})")
