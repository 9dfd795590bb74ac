"""Packaged models: SmolLM2 converted from its GGUF once, safely under concurrent workers."""

import os
import subprocess
import sys

import pytest

from arena_models.local_models import minilm_dir, resolve_model_path
from core.errors import UserError

CONVERT = "from arena_models.local_models import smollm2_dir; print(smollm2_dir())"


@pytest.mark.slow
def test_concurrent_conversions_leave_one_complete_folder(tmp_path):
    env = {**os.environ, "ARENA_CACHE": str(tmp_path), "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", CONVERT], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    paths = {w.communicate(timeout=600)[0].strip() for w in workers}
    assert all(w.returncode == 0 for w in workers)
    assert paths == {str(tmp_path / "smollm2-135m-instruct")}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smollm2-135m-instruct"]  # no temp dirs
    folder = tmp_path / "smollm2-135m-instruct"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"):
        assert (folder / name).is_file(), name
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_builtin_aliases():
    assert resolve_model_path("builtin:all-minilm-l6-v2") == str(minilm_dir())
    assert (minilm_dir() / "config.json").is_file()
    assert resolve_model_path("/some/folder") == "/some/folder"
    with pytest.raises(UserError, match="unknown builtin model 'nope'"):
        resolve_model_path("builtin:nope")
