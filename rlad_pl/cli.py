"""The ``rlad-pl`` command: ``fit | validate | test`` (LightningCLI) and ``generate-kk``.

Every constructor argument of the model (``model.class_path``, e.g. ``rlad_pl.module.RLADModule``
or ``rlad_pl.sft.SFTModule``), of the datamodule and of the Trainer is a config key;
``rlad-pl fit --config configs/logic.yaml --print_config`` prints the complete resolved config.
Configs compose: ``--config configs/logic.yaml --config configs/strategy/ddp.yaml``.

What the command does before Lightning starts (docs/errors.md):

- CPU threads: when ``OMP_NUM_THREADS`` is not set it sets ``OMP_NUM_THREADS`` to the CPUs this
  process may use and ``OMP_WAIT_POLICY=PASSIVE`` (idle OpenMP threads sleep instead of spinning),
  before torch is imported. Set ``OMP_NUM_THREADS`` yourself to choose.
- A pre-flight check of the config files and overrides (:func:`preflight`): every key, type and
  class path against the classes' signatures read from source (:mod:`rlad_pl.config_schema`),
  files, model / tokenizer / data paths and hub ids (with a fast offline check), and the RL
  module's and the shipped objectives' values (:mod:`rlad_pl.checks`). It imports neither
  Lightning nor transformers, and torch only for a user's own objective class (last), so a bad
  input is reported in about a second; what it cannot read is checked by LightningCLI and the
  modules as they are built.
- Every configuration error (ours, jsonargparse's, Lightning's ``MisconfigurationException``)
  is printed as one line ``rlad-pl: config error: ...`` with exit status 2 and no traceback;
  ``RLAD_DEBUG=1`` shows the traceback instead.

Heavy imports (Lightning, transformers) happen only once the checks passed, so ``import
rlad_pl.cli`` is cheap; ``RLADCLI`` is created on first access.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import socket
import sys
import threading
import warnings
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

from rlad_pl import config_schema
from rlad_pl.checks import NEEDS_TEACHER, OBJECTIVE_CHECKS, validate_rl_settings
from rlad_pl.config_schema import SPEC_KEYS
from rlad_pl.errors import ConfigError
from rlad_pl.tasks import TASK_ALIASES

DESCRIPTION = (
    "rlad-pl: RL post-training of LLMs with teacher distillation (RLAD/TRRD, GRPO, KDRL, GKD). "
    "Subcommands fit/validate/test take --config FILE.yaml (repeatable) and any key as "
    "--a.b value; "
    "`rlad-pl generate-kk --help` writes a Knights-and-Knaves dataset."
)
SUBCOMMANDS = ("fit", "validate", "test")
RL_MODULE = "rlad_pl.module.RLADModule"
TRRD_PATH = "rlad_pl.objectives.TRRD"  # the RL module's default objective
TRAINER = "lightning.pytorch.Trainer"
DEBUG_ENV = "RLAD_DEBUG"


# ----------------------------------------------------------------------------- threads
def thread_defaults() -> dict[str, str]:
    """CPU thread settings when the user chose none (``OMP_NUM_THREADS`` unset): all CPUs this
    process may run on, idle threads sleeping (``OMP_WAIT_POLICY=PASSIVE``). Must run before
    torch is imported to take full effect; afterwards it still sets torch's intra-op threads.
    Returns what it set (empty when ``OMP_NUM_THREADS`` was set)."""
    if os.environ.get("OMP_NUM_THREADS"):
        return {}
    try:
        cpus = len(os.sched_getaffinity(0))  # respects taskset / SLURM / container limits
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    chosen = {"OMP_NUM_THREADS": str(max(cpus, 1))}
    if not os.environ.get("OMP_WAIT_POLICY"):
        chosen["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ.update(chosen)
    if "torch" in sys.modules:  # too late for the environment: set torch's pool directly
        sys.modules["torch"].set_num_threads(max(cpus, 1))
    return chosen


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


# ----------------------------------------------------------------------------- warnings
def quiet_warnings() -> None:
    """Silence warnings that say nothing about the user's run (each filter targets one message)."""
    # lightning 2.6 calls a torch pytree API that torch 2.13 deprecates
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # the RL modules optimise manually and keep their state in the checkpoint themselves
    warnings.filterwarnings("ignore", message=r"(?s).*ModelCheckpoint.*manual optimization")
    # the prompt stream is an IterableDataset without a length, by design
    warnings.filterwarnings("ignore", message=r".*Your `IterableDataset` has `__len__`")
    warnings.filterwarnings("ignore", message=r".*does not have many workers which may be")
    # the validation batch size is known to the module; Lightning cannot infer it from records
    warnings.filterwarnings("ignore", message=r".*Trying to infer the `batch_size` from an")
    # tensorboardX is optional; Lightning falls back to torch's SummaryWriter
    warnings.filterwarnings("ignore", message=r".*tensorboardX.*has been removed")
    # Lightning's advertisements for its cloud services (logged, not warned)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.fabric.utilities.seed"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoTips) for f in logger.filters):
            logger.addFilter(_NoTips())


class _NoTips(logging.Filter):
    """Lightning's advertisements, and its echo of ``seed_everything`` (the seed is in the
    config and in the run's config.yaml), which would precede a one-line config error."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not (message.startswith("\N{ELECTRIC LIGHT BULB} Tip:")
                    or "Seed set to" in message)


# ----------------------------------------------------------------------------- pre-flight
def _yaml():
    import yaml

    return yaml


def _load_config_file(path: str) -> dict:
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"--config={path!r}: no such file (a YAML config such as "
                          "configs/logic.yaml)")
    yaml = _yaml()
    try:
        loaded = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"--config={path!r}: not valid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"--config={path!r}: cannot be read: {err}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"--config={path!r}: must be a YAML mapping of keys (trainer:, model:, "
                          f"data:, ...), got a {type(loaded).__name__}")
    return loaded


def _merge(base: dict, extra: dict) -> dict:
    """Deep merge as jsonargparse does for configs: mappings merge, everything else replaces;
    a new ``class_path`` drops the old class's ``init_args``."""
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            if "class_path" in value and value.get("class_path") != old.get("class_path"):
                out[key] = dict(value)
            else:
                out[key] = _merge(old, value)
        else:
            out[key] = value
    return out


def _set_key(config: dict, dotted: str, value, unsure: set[str]) -> None:
    """``--a.b.c value`` into ``config``; inside a ``class_path`` mapping ``init_args`` may be
    left out (``--model.student`` = ``--model.init_args.student``), as jsonargparse allows. A key
    that goes into a list (``--trainer.callbacks.every_n_steps`` after ``callbacks+=``) or gives
    a list one item is not modelled here: its path goes to ``unsure`` and the config is left
    as it is."""
    parts = dotted.split(".")
    node, path = config, []
    for part in parts[:-1]:
        if isinstance(node, dict) and "class_path" in node and part not in SPEC_KEYS:
            node = node.setdefault("init_args", {})
            path.append("init_args")
        path.append(part)
        child = node.get(part)
        if isinstance(child, list):
            unsure.add(".".join(path))
            return
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    last = parts[-1]
    if isinstance(node, dict) and "class_path" in node and last not in SPEC_KEYS:
        node = node.setdefault("init_args", {})
        path.append("init_args")
    old = node.get(last)
    if isinstance(old, list) and not isinstance(value, list):  # jsonargparse may append
        unsure.add(".".join([*path, last]))
    elif isinstance(old, dict) and "class_path" in old and isinstance(value, str):
        node[last] = old if old["class_path"] == value else {"class_path": value}
    elif isinstance(old, dict) and isinstance(value, dict):
        node[last] = _merge(old, value)
    else:
        node[last] = value


def _parse_value(text: str):
    try:
        return _yaml().safe_load(text)
    except Exception:  # jsonargparse keeps unparsable text as a string
        return text


def collect_config(args: list[str]) -> tuple[dict, frozenset[str]] | None:
    """The config as jsonargparse will see it, from ``--config`` files and ``--key value``
    overrides in command-line order, and the keys whose values it cannot model exactly (list
    appends ``+=`` and keys into lists); ``None`` when the command is not a plain run (help,
    print_config, an unknown form)."""
    if not args or args[0] not in SUBCOMMANDS:
        return None
    config: dict = {}
    unsure: set[str] = set()
    rest = args[1:]
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg in ("-h", "--help", "--print_config") or arg.startswith("--print_config="):
            return None
        if not arg.startswith("--"):
            if arg == "-c":  # short form of --config
                arg = "--config"
            else:
                return None
        key, eq, value = arg[2:].partition("=")
        if key == "help" or key.endswith(".help"):  # --model.help CLASS: jsonargparse's help
            return None
        if not eq:
            if i + 1 >= len(rest) or rest[i + 1].startswith("--"):
                i += 1  # a flag without value: leave it to jsonargparse
                continue
            value = rest[i + 1]
            i += 1
        i += 1
        if key == "config":
            config = _merge(config, _load_config_file(value))
        elif "+" in key:
            unsure.add(_normal_key(config, key.replace("+", "")))
        elif key:
            _set_key(config, key, _parse_value(value), unsure)
    return config, frozenset(unsure)


def _normal_key(config: dict, dotted: str) -> str:
    """``dotted`` with ``init_args`` where jsonargparse lets it be left out."""
    node, path = config, []
    for part in dotted.split("."):
        if isinstance(node, dict) and "class_path" in node and part not in SPEC_KEYS:
            node = node.get("init_args") or {}
            path.append("init_args")
        path.append(part)
        node = node.get(part) if isinstance(node, dict) else None
    return ".".join(path)


def _embedded_names() -> list[str]:
    embedded = Path(__file__).resolve().parent / "embedded"
    return sorted(p.name for p in embedded.iterdir() if p.is_dir()) if embedded.is_dir() else []


_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_MODEL_FILES = ("config.json",)
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


def _looks_like_path(name: str) -> bool:
    return (name.startswith(("/", "./", "../", "~", "\\")) or name.count("/") > 1
            or os.path.exists(os.path.expanduser(name)) or name in (".", ".."))


def hub_cache_has(repo_id: str, filename: str = "config.json") -> bool:
    """Whether the Hugging Face cache holds ``filename`` of ``repo_id`` (no import, no network)."""
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface")),
        "hub")
    snapshots = Path(cache) / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    return snapshots.is_dir() and any((s / filename).exists() for s in snapshots.iterdir())


def hub_unreachable(timeout: float = 2.0) -> str | None:
    """Why the Hugging Face hub cannot be reached (``HF_HUB_OFFLINE``, no DNS, no route), or
    ``None`` when a TCP connection to it opens within ``timeout`` seconds (name lookup
    included, so a missing network answers in about ``timeout`` seconds, not after retries)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{var}={os.environ[var]} is set"
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    result: list = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(None)
        except OSError as err:
            result.append(err.strerror or str(err) or type(err).__name__)

    worker = threading.Thread(target=connect, daemon=True)  # getaddrinfo has no timeout
    worker.start()
    worker.join(timeout + 0.5)
    if not result:
        return f"{host}:{port} did not answer within {timeout:.0f} s (no network?)"
    return None if result[0] is None else f"{host}:{port} is unreachable ({result[0]})"


def check_model_reference(key: str, value, *, kind: str = "model") -> str | None:
    """A one-line problem with a model / tokenizer reference, or ``None``; returns the hub id
    when ``value`` is one (checked later for reachability, once for all ids)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}={value!r}: must be an embedded name, a local folder or a "
                          "Hugging Face hub id (a string)")
    embedded = _embedded_names()
    files = _MODEL_FILES if kind == "model" else _TOKENIZER_FILES
    allowed = (f"an embedded name ({', '.join(embedded)}), a local {kind} folder (with "
               f"{' or '.join(files)}) or a Hugging Face hub id (org/name)")
    if "/" not in value and value in embedded:
        return None
    if _looks_like_path(value):
        path = Path(value).expanduser()
        if not path.exists():
            raise ConfigError(f"{key}={value!r}: no such folder; expected {allowed}")
        if not path.is_dir():
            raise ConfigError(f"{key}={value!r}: is a file, not a folder; expected {allowed}")
        if not any((path / f).is_file() for f in files):
            raise ConfigError(f"{key}={value!r}: the folder has no {' or '.join(files)}; "
                              f"expected {allowed}")
        return None
    if not _HUB_ID.match(value):
        raise ConfigError(f"{key}={value!r}: not a valid hub id or existing folder; expected "
                          f"{allowed}")
    return value


def _class_and_args(node) -> tuple[str | None, dict]:
    if isinstance(node, str):
        return node, {}
    if isinstance(node, dict):
        args = node.get("init_args") or {}
        return node.get("class_path"), args if isinstance(args, dict) else {}
    return None, {}


def _build(class_path: str, args: dict):
    """An instance of ``class_path`` from plain ``args``, or ``None`` when it cannot be built
    here (then LightningCLI reports the problem)."""
    module_name, _, name = class_path.rpartition(".")
    if not module_name:
        return None
    try:
        cls = getattr(importlib.import_module(module_name), name)
        return cls(**config_schema.coerce(class_path, args))
    except ConfigError:
        raise
    except Exception:
        return None


def check_schema(config: dict, subcommand: str, unsure: frozenset[str] = frozenset()) -> None:
    """Keys, types and class paths of ``config`` against the signatures of its classes (the
    model's, the data's, the Trainer's and every ``class_path`` below them), read from source
    without importing them (:mod:`rlad_pl.config_schema`); ``unsure``: keys not modelled."""
    top = {"config", "print_config", "seed_everything", "trainer", "model", "data", "optimizer",
           "lr_scheduler"}
    accepted = config_schema.method_parameters(TRAINER, subcommand)
    if accepted is not None:
        keys = sorted(top | accepted - {"model", "datamodule", "dataloaders",
                                        "train_dataloaders", "val_dataloaders"})
        for key, value in config.items():
            if key not in keys and key not in unsure:
                raise ConfigError(f"{key}={value!r}: not a key of `rlad-pl {subcommand}`; the "
                                  f"keys are {', '.join(keys)}")
    for group in ("model", "data"):
        spec = config.get(group)
        if isinstance(spec, dict) and group not in unsure:
            config_schema.check_class_spec(group, spec, unsure)
    trainer = config.get("trainer")
    if isinstance(trainer, dict) and "trainer" not in unsure:
        config_schema.check_class("trainer", TRAINER, trainer, unsure)


def _settings(class_path: str, given: dict) -> SimpleNamespace:
    """A class's literal defaults updated with ``given``, numbers as jsonargparse converts
    them, as attributes (for the value checks without the class)."""
    return SimpleNamespace(**config_schema.coerce(
        class_path, {**config_schema.class_defaults(class_path), **given}))


def _check_rl_values(model_args: dict, objective_path: str, objective=None) -> None:
    """The RL module's value checks (:mod:`rlad_pl.checks`) on the config. Without the built
    ``objective`` its needs are read from the class's source where they are constants, else
    taken as the least it can need (no teacher, one sample per prompt)."""
    from rlad_pl.optim import Optimization

    needs = {}
    for name in ("needs_teacher", "uses_reward"):
        value = (getattr(objective, name, False) if objective is not None
                 else config_schema.class_attribute(objective_path, name))
        needs[name] = value if isinstance(value, bool) else False
    defaults = config_schema.class_defaults(RL_MODULE)
    parts = {}
    for name, class_path in (("sampling", "rlad_pl.rollout.base.SamplingSettings"),
                             ("evaluation", "rlad_pl.module.EvaluationSettings"),
                             ("optimization", "rlad_pl.optim.Optimization")):
        given = model_args.get(name)
        base = defaults.get(name)
        if not isinstance(base, dict) or not isinstance(given, dict | None):
            return  # not readable here: left to the module
        parts[name] = _settings(class_path, {**base, **(given or {})})
    try:
        optimization = Optimization(**vars(parts["optimization"]))
        validate_rl_settings(
            _settings(RL_MODULE, model_args), parts["sampling"], parts["evaluation"],
            optimization, objective=objective_path.rpartition(".")[2], **needs)
    except (TypeError, AttributeError):  # a value of an unexpected type: left to the module
        return


def _check_task_names(model_args: dict, data_path: str | None, data_args: dict) -> None:
    """``model.init_args.task`` against the task the data provides, both given by name."""
    wanted = model_args.get("task")
    provided = data_args.get("task", config_schema.class_defaults(data_path or "").get("task"))
    if isinstance(wanted, str) and isinstance(provided, str):
        _check_task(wanted, TASK_ALIASES.get(provided, provided))


def preflight(args: list[str]) -> None:
    """Checks that need no model, no Lightning and no transformers; raises :class:`ConfigError`.

    Runs before the heavy imports so that the common mistakes (an unknown key, a wrong type, a
    class that does not exist, a missing file or folder, a hub id without network, a bad value)
    are reported in about a second. Anything it cannot interpret is left to LightningCLI (never
    a false alarm). Only a user's own objective class imports torch, and it runs last. Sets
    ``HF_HUB_OFFLINE=1`` when the hub is unreachable but every hub id is in the local cache,
    so loading does not wait for retries.
    """
    collected = collect_config(args)
    if collected is None:
        return
    config, unsure = collected
    _check_trainer(config.get("trainer"))
    check_schema(config, args[0], unsure)
    hub_ids: list[tuple[str, str]] = []
    model_path, model_args = _class_and_args(config.get("model"))
    data_path, data_args = _class_and_args(config.get("data"))
    rl_module = model_path == RL_MODULE
    obj_path, obj_args = _class_and_args(model_args.get("objective")) if rl_module else (None, {})
    obj_path = obj_path if isinstance(obj_path, str) else TRRD_PATH
    # 1. files and folders
    if rl_module:
        refs = ["student", "teacher"] + (["reference"] if _positive(model_args.get("beta")) else [])
        if _teacher_unused(obj_path, obj_args) or str(model_args.get("teacher")).startswith(
                ("http://", "https://")):  # a teacher server: checked by TeacherLogprobCache
            refs.remove("teacher")
        for name in refs:
            if name in model_args:
                key = f"model.init_args.{name}"
                hub = check_model_reference(key, model_args[name], kind="model")
                if hub:
                    hub_ids.append((key, hub))
    if data_path and "tokenizer" in data_args:
        key = "data.init_args.tokenizer"
        hub = check_model_reference(key, data_args["tokenizer"], kind="tokenizer")
        if hub:
            hub_ids.append((key, hub))
    data_dir = data_args.get("data_dir") if data_path else None
    if isinstance(data_dir, str) and not Path(data_dir).expanduser().is_dir():
        what = "is a file" if Path(data_dir).expanduser().exists() else "no such folder"
        raise ConfigError(f"data.init_args.data_dir={data_dir!r}: {what}; expected a folder with "
                          "train/ and test/ JSONL files (rlad-pl generate-kk --out DIR writes "
                          "one) or null for the generated stream")
    # 2. values that need no objective (no import of torch)
    if rl_module:
        _check_rl_values(model_args, obj_path)
        _check_task_names(model_args, data_path, data_args)
    # 3. hub ids: one connection attempt, bounded in time
    if hub_ids:
        reason = hub_unreachable()
        uncached = [(key, hub) for key, hub in hub_ids if not hub_cache_has(hub)]
        if reason is not None and uncached:
            key, hub = uncached[0]
            raise ConfigError(f"{key}={hub!r}: not in the local Hugging Face cache and the hub "
                              f"cannot be reached: {reason}; download it first "
                              "(huggingface-cli download) or give a local folder")
        if reason is not None:
            os.environ["HF_HUB_OFFLINE"] = "1"  # all cached: load without network retries
    # 4. the objective's own checks, then what depends on it (a user's class imports torch)
    if rl_module:
        objective = _objective_settings(obj_path, obj_args)
        if objective is None:
            objective = _build(obj_path, obj_args)
        if objective is not None:
            _check_rl_values(model_args, obj_path, objective)


def _objective_settings(class_path: str, args: dict) -> SimpleNamespace | None:
    """A shipped objective's settings checked without torch (:mod:`rlad_pl.checks`),
    with the needs the module reads; ``None`` for another class or unreadable values."""
    path = config_schema.defining_path(class_path)
    if path not in OBJECTIVE_CHECKS:
        return None
    settings = SimpleNamespace(**{**config_schema.class_defaults(class_path),
                                  **config_schema.coerce(class_path, args)})
    try:
        OBJECTIVE_CHECKS[path](settings)
        settings.needs_teacher = (NEEDS_TEACHER[path](settings) if path in NEEDS_TEACHER
                                  else config_schema.class_attribute(path, "needs_teacher"))
    except (TypeError, AttributeError):  # an unexpected type or key: left to the class
        return None
    settings.uses_reward = config_schema.class_attribute(path, "uses_reward")
    return settings


ACCELERATORS = ("auto", "cpu", "cuda", "gpu", "mps", "tpu", "xla", "hpu")
PRECISIONS = ("transformer-engine", "transformer-engine-float16", "16-true", "16-mixed",
              "bf16-true", "bf16-mixed", "32-true", "64-true", "64", "32", "16", "bf16")


def _check_trainer(trainer) -> None:
    """The Trainer values most often mistyped (others are left to Lightning)."""
    if not isinstance(trainer, dict):
        return

    def bad(key: str, allowed: str) -> None:
        raise ConfigError(f"trainer.{key}={trainer[key]!r}: {allowed}")

    accelerator = trainer.get("accelerator")
    if isinstance(accelerator, str) and accelerator not in ACCELERATORS:
        bad("accelerator", f"must be one of {', '.join(ACCELERATORS)}")
    precision = trainer.get("precision")
    if isinstance(precision, (str, int)) and not isinstance(precision, bool) \
            and str(precision) not in PRECISIONS:
        bad("precision", f"must be one of {', '.join(PRECISIONS)}")
    for key, low in (("max_steps", -1), ("log_every_n_steps", 1), ("num_sanity_val_steps", -1)):
        value = trainer.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < low):
            bad(key, f"must be an integer >= {low}")
    interval = trainer.get("val_check_interval")
    if isinstance(interval, (int, float)) and not isinstance(interval, bool) and (
            interval <= 0 or (isinstance(interval, float) and interval > 1)):
        bad("val_check_interval", "must be an integer >= 1 (training steps) or a fraction in "
            "(0, 1]")


def _teacher_unused(obj_path: str | None, obj_args: dict) -> bool:
    """GRPO, or TRRD with alpha 1, never loads the teacher (decided without importing)."""
    name = (obj_path or "").rpartition(".")[2]
    if name == "GRPO":
        return True
    try:
        return name == "TRRD" and float(obj_args.get("alpha", 0.5)) >= 1
    except (TypeError, ValueError):
        return False


def _positive(value) -> bool:
    try:
        return float(value) > 0
    except (TypeError, ValueError):
        return False


# ----------------------------------------------------------------------------- errors
def one_line(err: BaseException) -> str | None:
    """The one-line message for a configuration error anywhere in ``err``'s chain (ours,
    jsonargparse's, Lightning's misconfiguration), or ``None`` for anything else (a bug: the
    traceback is shown)."""
    seen = set()
    todo = [err]
    found = None
    while todo:
        cause = todo.pop(0)
        if cause is None or id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, ConfigError):
            return _first_lines(str(cause))
        if found is None and _is_parser_error(cause):
            found = _first_lines(str(cause))
        todo += [cause.__cause__, cause.__context__]
    return found


def _is_parser_error(err: BaseException) -> bool:
    names = {f"{c.__module__}.{c.__name__}" for c in type(err).__mro__}
    return bool(names & {"jsonargparse._common.ArgumentError", "argparse.ArgumentError",
                         "jsonargparse.ArgumentError",
                         "lightning.fabric.utilities.exceptions.MisconfigurationException"})


_NOT_ACCEPTED = re.compile(
    r"Parser key \"(?P<group>[\w.]+)\":.*?Problem with given class_path '(?P<cls>[\w.]+)': "
    r"(?P<problem>.*?)(?: - Expected a <class 'NoneType'>.*)?$", re.S)


def _first_lines(message: str) -> str:
    """Several lines (jsonargparse lists what each alternative type said) joined into one;
    for a subclass key only the problem with the given class, not the ``None`` alternative."""
    match = _NOT_ACCEPTED.match(" ".join(message.split()))
    if match:
        problem = match["problem"].strip()
        return (f"{match['group']} ({match['cls']}): {problem} (`rlad-pl fit --{match['group']}"
                f".help {match['cls']}` lists the keys and their types)")
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    text = " ".join(lines) if lines else message.strip()
    return text if len(text) <= 600 else text[:597] + "..."


# ----------------------------------------------------------------------------- LightningCLI
def _make_cli_class():
    from lightning.pytorch.cli import LightningCLI

    class RLADCLI(LightningCLI):
        """LightningCLI with model and datamodule chosen by ``class_path`` in the config."""

        def __init__(self, args: list[str] | None = None, run: bool = True,
                     exit_on_error: bool = True) -> None:
            super().__init__(
                subclass_mode_model=True,
                subclass_mode_data=True,
                save_config_kwargs={"overwrite": True},
                parser_kwargs={"prog": "rlad-pl", "description": DESCRIPTION,
                               "exit_on_error": exit_on_error},
                auto_configure_optimizers=False,  # the modules build their own optimizer
                args=args,
                run=run,
            )

        def instantiate_trainer(self, **kwargs):
            """Trainer arguments Lightning rejects (an unknown accelerator, a bad precision) are
            configuration errors: nothing has run yet."""
            from lightning.fabric.utilities.exceptions import MisconfigurationException

            _check_built_task(getattr(self, "model", None), getattr(self, "datamodule", None))
            _read_data_first(getattr(self, "datamodule", None), getattr(self, "subcommand", None))
            try:
                trainer = super().instantiate_trainer(**kwargs)
            except (ValueError, TypeError, MisconfigurationException) as err:
                raise ConfigError(f"trainer: {_first_lines(str(err))}") from err
            _use_step_progress_bar(trainer, listed=kwargs.get("callbacks") or [])
            return trainer

        @staticmethod
        def subcommands() -> dict[str, set[str]]:
            return {name: keys for name, keys in LightningCLI.subcommands().items()
                    if name in SUBCOMMANDS}

    return RLADCLI


def _check_built_task(model, datamodule) -> None:
    """The model's ``task`` against the data's, before the Trainer starts printing (the
    module checks it again in ``setup``)."""
    hparams = getattr(model, "hparams", None)
    wanted = hparams.get("task") if hasattr(hparams, "get") else None
    data_task = getattr(datamodule, "task", None)
    name = data_task if isinstance(data_task, str) else getattr(data_task, "name", None)
    if isinstance(wanted, str) and isinstance(name, str):
        _check_task(wanted, name)


def _check_task(wanted: str, provided: str) -> None:
    if wanted != provided:
        raise ConfigError(f"model.init_args.task={wanted!r}: the data provides task "
                          f"{provided!r} (data.init_args.task); set it to {provided!r} or null")


def _read_data_first(datamodule, stage: str | None) -> None:
    """Read rlad-pl's datamodules before the Trainer is built: a bad data file or record is then
    reported as one line before Lightning prints anything, creates the run's log folder or
    writes its config.yaml (their ``setup`` reads once; the Trainer's call returns at once)."""
    from rlad_pl.data import PromptDataModule
    from rlad_pl.sft.data import SFTDataModule

    if isinstance(datamodule, PromptDataModule | SFTDataModule):
        datamodule.setup(stage)


def _use_step_progress_bar(trainer, listed: list) -> None:
    """Lightning's default bar (tqdm, or rich when installed) counts epochs (``Epoch 0/-2`` on
    an endless prompt stream): put the step-based one in its place. A progress bar listed in
    the config is left alone; ``trainer.enable_progress_bar: false`` keeps none."""
    from lightning.pytorch.callbacks.progress import ProgressBar

    from rlad_pl.callbacks.progress import StepProgressBar

    listed_ids = {id(c) for c in (listed if isinstance(listed, list) else [listed])}
    for i, callback in enumerate(trainer.callbacks):
        if isinstance(callback, ProgressBar) and id(callback) not in listed_ids:
            trainer.callbacks[i] = StepProgressBar()
            return


def __getattr__(name: str):
    if name == "RLADCLI":  # built on first use: importing this module stays cheap
        cls = _make_cli_class()
        globals()["RLADCLI"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point ``rlad-pl``."""
    args = sys.argv[1:] if argv is None else list(argv)
    debug = os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    if args and args[0] == "generate-kk":
        from rlad_pl.tasks.knights_knaves import cli_generate

        cli_generate(args[1:])
        return
    thread_defaults()
    quiet_warnings()
    if not _stdout_is_terminal():  # download / weight-loading bars only clutter a log file
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        preflight(args)
        cli_class = __getattr__("RLADCLI") if "RLADCLI" not in globals() else globals()["RLADCLI"]
        cli_class(args=argv, exit_on_error=False)  # None: LightningCLI reads sys.argv
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as err:
        stopped = _teacher_server_stop(err)
        if stopped is not None and not debug:  # a checkpoint was saved: one line, then exit 3
            print(f"rlad-pl: teacher server: {stopped}", file=sys.stderr)
            raise SystemExit(3) from None
        message = one_line(err)
        if message is None or debug:
            raise
        print(f"rlad-pl: config error: {message}", file=sys.stderr)
        raise SystemExit(2) from None


def _teacher_server_stop(err: BaseException) -> str | None:
    """The message of a remote teacher that stayed down (``TeacherServerError``) in the chain."""
    while err is not None:
        if type(err).__name__ == "TeacherServerError":
            return " ".join(str(err).split())
        err = err.__cause__ or err.__context__
    return None


if __name__ == "__main__":
    main()
