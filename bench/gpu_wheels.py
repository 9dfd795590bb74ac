"""What the GPU check (bench/gpu_check.sh) carries to a lent GPU machine, and its size.

    make gpu-wheels        (python -m bench.gpu_wheels [--carry gpu_carry] [--no-download])

The lent machine (one H100 or H200, Python 3.12, torch 2.11, transformers 5.17,
sentence-transformers, pyarrow, pandas, numpy) reaches nothing outside itself, and the
working tree it receives may hold 64 MiB in all. Into the ignored folder `gpu_carry/`:

- wheels/: the packages the check needs that the machine lacks, pinned to the versions
  this venv runs (so the CPU dry run tests what travels), for CPython 3.12 manylinux
  x86-64, without their dependencies (the machine has the rest). Not torch or
  transformers (the machine's own), not vLLM (its CUDA wheel alone is hundreds of MiB).
- models/: MiniLM's and SmolLM2-135M-Instruct's configs, tokenizers and chat template,
  without weights: MiniLM's float32 weights are 87 MiB (43 in float16) and SmolLM2's
  smallest packaged form 94 MiB (a Q4_1 GGUF), each over what is left beside the wheels.
  The check builds random weights of the real architectures from them on the machine.
- data/prompts/: the real prompts of ../shared/data/prompts (../shared does not travel),
  with that folder's README for their sources and licences.

Prints every wheel's size and the totals against the limit (working tree included);
exits 1 when the total is over it. --no-download copies models and data only (tests).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CARRY = REPO / "gpu_carry"
SHARED_PROMPTS = REPO.parent / "shared" / "data" / "prompts"
LIMIT_MIB = 64.0
MINILM = "all-minilm-l6-v2"
SMOLLM2 = "smollm2-135m-instruct"

# name==version; each group is what one part of the check needs beyond the machine's own.
WHEELS = (
    # `arena build-evalset` on a LocalCluster
    *("dask==2026.8.0", "distributed==2026.8.0", "partd==1.4.2", "locket==1.0.0"),
    *("tblib==3.2.2", "zict==3.0.0", "tornado==6.6.1"),
    # FAISS K-means of the eval-set build
    "faiss-cpu==1.15.1",
    # trl SFT and DPO
    *("trl==1.16.0", "datasets==5.2.0", "dill==0.4.1", "multiprocess==0.70.19"),
    # the transformers judge's enforced verdict format (xgrammar)
    *("xgrammar==0.2.8", "apache-tvm-ffi==0.1.15.post2", "pydantic==2.14.4"),
    *("pydantic-core==2.50.5", "typing-inspection==0.4.5", "annotated-types==0.8.0"),
)
# The modules those wheels give: when all import, the check installs nothing.
MODULES = ("dask", "distributed", "faiss", "trl", "datasets", "xgrammar")
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
    "manylinux_2_5_x86_64",
)
MINILM_FILES = (
    "config.json",
    "config_sentence_transformers.json",
    "modules.json",
    "sentence_bert_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "1_Pooling/config.json",
)
SMOLLM2_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
)

log = logging.getLogger("bench.gpu_wheels")


def mib(size: int) -> float:
    return size / 2**20


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def tree_bytes() -> int | None:
    """What the device tool sends besides carried paths: tracked files and untracked ones
    git does not ignore; None without git (a copy of the tree, as on the lent machine)."""
    try:
        names = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout.split(b"\0")
    except (OSError, subprocess.CalledProcessError):
        return None
    paths = (REPO / n.decode() for n in names if n)
    return sum(p.stat().st_size for p in paths if p.is_file())


def download(wheels: Path) -> None:
    """Exactly the pinned wheels in `wheels/`: others (an older pin) go, since two versions
    of one package stop the install there."""
    wheels.mkdir(parents=True, exist_ok=True)
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps"]
    command += ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp"]
    subprocess.run([*command, *platforms, "-d", str(wheels), *WHEELS], check=True)
    wanted = {_wheel_key(spec.replace("==", "-")) for spec in WHEELS}
    for wheel in wheels.glob("*.whl"):
        if _wheel_key("-".join(wheel.name.split("-")[:2])) not in wanted:
            log.info("removing %s: not pinned", wheel.name)
            wheel.unlink()


def _wheel_key(name_version: str) -> str:
    """'pydantic_core-2.50.5' and 'pydantic-core-2.50.5' alike (wheel names use '_')."""
    name, _, version = name_version.rpartition("-")
    return f"{name.replace('-', '_').lower()}-{version}"


def check_pins() -> list[str]:
    """Pins that differ from this venv's installed versions: the dry run here would then
    test other code than the machine runs."""
    differ = []
    for spec in WHEELS:
        name, version = spec.split("==")
        try:
            here = metadata.version(name)
        except metadata.PackageNotFoundError:
            here = None
        if here != version:
            differ.append(f"{name} {version} carried, {here} here")
    return differ


def copy_models(models: Path) -> None:
    """Configs, tokenizers and chat template of the two models, no weights."""
    from arena_models.local_models import minilm_dir, smollm2_dir

    for name, source, files in (
        (MINILM, minilm_dir(), MINILM_FILES),
        (SMOLLM2, smollm2_dir(), SMOLLM2_FILES),
    ):
        for file in files:
            target = models / name / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / file, target)


def copy_prompts(data: Path) -> None:
    if not SHARED_PROMPTS.is_dir():
        raise SystemExit(f"gpu_wheels: {SHARED_PROMPTS} is missing (../shared beside the checkout)")
    target = data / "prompts"
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(SHARED_PROMPTS.glob("*.jsonl")):
        shutil.copyfile(path, target / path.name)
    shutil.copyfile(SHARED_PROMPTS.parent / "README.md", data / "README.md")


def sizes(carry: Path) -> dict[str, float]:
    """MiB of each part of what travels, and the total the device tool counts."""
    tree = tree_bytes()
    parts = {
        "wheels": mib(folder_bytes(carry / "wheels")),
        "models": mib(folder_bytes(carry / "models")),
        "data": mib(folder_bytes(carry / "data")),
        "working_tree": mib(tree) if tree is not None else None,
    }
    parts["total"] = sum(v for v in parts.values() if v is not None)
    return parts


def report(carry: Path) -> dict[str, float]:
    for wheel in sorted((carry / "wheels").glob("*.whl")):
        print(f"  {mib(wheel.stat().st_size):6.2f} MiB  {wheel.name}")
    for folder in (carry / "models" / MINILM, carry / "models" / SMOLLM2, carry / "data"):
        print(f"  {mib(folder_bytes(folder)):6.2f} MiB  {folder.relative_to(carry)}/")
    figures = sizes(carry)
    tree = figures["working_tree"]
    print(
        f"wheels {figures['wheels']:.2f} MiB, models {figures['models']:.2f} MiB (no weights),"
        f" data {figures['data']:.2f} MiB, working tree "
        f"{'unknown (no git)' if tree is None else f'{tree:.2f} MiB'}:"
        f" {figures['total']:.2f} of {LIMIT_MIB:.0f} MiB"
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="gpu_wheels: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carry", type=Path, default=CARRY, help="folder to fill")
    parser.add_argument("--no-download", action="store_true", help="models and data only")
    args = parser.parse_args(argv)
    for line in check_pins():
        log.warning("pin differs from this venv: %s", line)
    if not args.no_download:
        try:
            download(args.carry / "wheels")
        except subprocess.CalledProcessError:
            print("gpu_wheels: pip download failed (see its message above); is PyPI reachable?")
            return 1
    copy_models(args.carry / "models")
    copy_prompts(args.carry / "data")
    figures = report(args.carry)
    if figures["total"] > LIMIT_MIB:
        print(f"gpu_wheels: {figures['total']:.2f} MiB is over the {LIMIT_MIB:.0f} MiB limit")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
