"""Export a trained adapter: as a llama.cpp LoRA GGUF, or merged into the base as safetensors.

The GGUF writer maps PEFT's tensor names to llama.cpp's (`blk.N.attn_q` ...)
and applies the row permutation llama.cpp uses for the query and key
projections of llama-architecture models, which transformers undoes when it
loads a GGUF. It records the base model's identity so chat can refuse an
adapter made for another model with a clear message.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from rolecraft.errors import RolecraftError
from rolecraft.files import atomic_path
from rolecraft.training.checkpoints import META_FILE, read_meta, write_atomic

_LAYER = re.compile(r"(model\.layers\.\d+\.(?:self_attn|mlp)\.\w+)\.lora_([AB])\.weight$")
PERMUTED_ARCHS = {"llama"}
BASE_KEY = "rolecraft.base"


def _adapter_parts(folder: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    from safetensors.torch import load_file

    config_file, weights = folder / "adapter_config.json", folder / "adapter_model.safetensors"
    if not config_file.is_file() or not weights.is_file():
        raise RolecraftError(f"{folder} is not a PEFT LoRA adapter (adapter_config.json and "
                             "adapter_model.safetensors expected)", code="invalid_adapter", param="adapter")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
        config["r"], config["lora_alpha"] = int(config["r"]), float(config["lora_alpha"])
        meta = read_meta(folder) if (folder / META_FILE).is_file() else {}
        return config, load_file(str(weights)), meta
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RolecraftError(f"{folder} is not a readable LoRA adapter: {exc!r}", code="invalid_adapter",
                             param="adapter") from exc


def _permute(rows: Any, heads: int) -> Any:
    """llama.cpp's rotary layout for a projection's output rows (applied to LoRA B)."""
    shape = rows.shape
    return rows.reshape(heads, 2, shape[0] // heads // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def _alpha(config: dict[str, Any]) -> float:
    """llama.cpp scales by alpha / rank; PEFT's rsLoRA scales by alpha / sqrt(rank)."""
    rank, alpha = config["r"], float(config["lora_alpha"])
    return alpha * math.sqrt(rank) if config.get("use_rslora") else alpha


def lora_to_gguf(adapter: Path, out: Path, identity: dict[str, Any] | None = None) -> Path:
    """Write the PEFT adapter in `adapter` as a llama.cpp LoRA GGUF at `out` (atomically)."""
    import gguf

    config, tensors, meta = _adapter_parts(adapter)
    identity = identity or meta.get("base_identity")
    if not identity or not identity.get("architecture"):
        raise RolecraftError(f"{adapter} does not say which base model it was trained on (no {META_FILE}); "
                             "train it with rolecraft or pass the base identity", code="invalid_adapter",
                             param="adapter")
    arch = identity["architecture"]
    names = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}
    if arch not in names:
        raise RolecraftError(f"llama.cpp has no architecture {arch!r}", code="invalid_adapter", param="adapter")
    mapping = gguf.get_tensor_name_map(names[arch], int(identity["block_count"]))
    pairs = _gguf_tensors(tensors, mapping, identity)
    try:
        with atomic_path(out) as tmp:
            _write_gguf(tmp, arch, config, identity, pairs)
    except OSError as exc:
        raise RolecraftError(f"cannot write {out}: {exc.strerror or exc}", code="write_failed", param="out") from exc
    return out


def _gguf_tensors(tensors: dict[str, Any], mapping: Any, identity: dict[str, Any]) -> list[tuple[str, Any]]:
    """(llama.cpp name, float32 array) for every LoRA A/B pair, B permuted for q/k where llama.cpp expects it."""
    out = []
    for key in sorted(tensors):
        found = _LAYER.search(key)
        if found is None:
            raise RolecraftError(f"cannot export adapter tensor {key!r} to GGUF (only LoRA on decoder linear "
                                 "layers is supported)", code="invalid_adapter", param="adapter")
        target = mapping.get_name(found.group(1))
        if target is None:
            raise RolecraftError(f"llama.cpp has no tensor for {found.group(1)}", code="invalid_adapter",
                                 param="adapter")
        array = tensors[key].float().numpy()
        if found.group(2) == "B" and identity["architecture"] in PERMUTED_ARCHS:
            if target.endswith("attn_q"):
                array = _permute(array, int(identity["head_count"]))
            elif target.endswith("attn_k"):
                array = _permute(array, int(identity["head_count_kv"]))
        out.append((f"{target}.weight.lora_{found.group(2).lower()}", array))
    return out


def merge(base_model: Any, adapter: Path, out: Path, tokenizer: Any = None) -> Path:
    """The base with the adapter folded in, saved as a safetensors model folder (plus tokenizer if given)."""
    from peft import PeftModel

    try:
        merged = PeftModel.from_pretrained(base_model, str(adapter)).merge_and_unload()
    except (ValueError, RuntimeError, OSError, KeyError) as exc:
        raise RolecraftError(f"cannot merge {adapter} into its base (not a PEFT adapter, or made for another "
                             f"model): {exc}", code="invalid_adapter", param="adapter") from exc
    if getattr(merged, "hf_quantizer", None) is not None:  # a GGUF base was dequantized on load: plain weights now
        merged.hf_quantizer = None
        merged.config.__dict__.pop("quantization_config", None)

    def fill(folder: Path) -> None:
        merged.save_pretrained(str(folder), safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(str(folder))

    return write_atomic(out, fill)


def _write_gguf(path: Path, arch: str, config: dict[str, Any], identity: dict[str, Any],
                pairs: list[tuple[str, Any]]) -> None:
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_string(gguf.Keys.General.TYPE, gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, _alpha(config))
    for key in ("architecture", "name", "block_count", "embedding_length", "vocab_size"):
        writer.add_string(f"{BASE_KEY}.{key}", str(identity.get(key)))
    for name, array in pairs:
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
