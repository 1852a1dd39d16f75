"""`lnexp inspect MODEL --weights-only`: the norm layers of a GGUF model read straight from the
file, without building the model: names, roles, eps and statistics of each learned scale.

The GGUF header is parsed here (format v2/v3: key-values, then tensor infos, then aligned
data); the norm tensors, float32 or float16 in every GGUF seen, are read from a memory map.
gguf.GGUFReader would do the same but decodes every tokenizer string into numpy views first
(~10-40 s for SmolLM2's 49,152 tokens on this machine), where skipping them takes milliseconds.

Scale values are what the model multiplies x̂ by: llama.cpp's converter stores Gemma's
RMSNorm weights as 1 + w, which is Gemma's effective scale, so GGUF values are reported as is.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from lnexp.inspect.errors import InspectError

# GGUF value types: fixed-size scalars (struct format), 8 = string, 9 = array
_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
           10: "<Q", 11: "<q", 12: "<d"}
_F32, _F16 = 0, 1

# GGUF tensor name (blk.N.<part>.weight) -> (Hugging Face module name, role)
_PARTS = {
    "attn_norm": ("input_layernorm", "pre-attention"),
    "post_attention_norm": ("post_attention_layernorm", "post-attention"),
    "ffn_norm": ("pre_feedforward_layernorm", "pre-FFN"),  # LLaMA: post_attention_layernorm
    "post_ffw_norm": ("post_feedforward_layernorm", "post-FFN"),
    "attn_q_norm": ("self_attn.q_norm", "q"),
    "attn_k_norm": ("self_attn.k_norm", "k"),
}


class _Header:
    def __init__(self, f: BinaryIO):
        self.f = f

    def read(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        raw = self.f.read(size)
        if len(raw) != size:
            raise InspectError("the GGUF file ends inside its header (truncated?)")
        return struct.unpack(fmt, raw)[0]

    def string(self, keep: bool = True) -> str | None:
        n = self.read("<Q")
        if n > 1 << 30:
            raise InspectError("the GGUF header has an impossible string length (corrupt?)")
        if not keep:
            self.f.seek(n, 1)
            return None
        return self.f.read(n).decode("utf-8", errors="replace")

    def value(self, vtype: int, keep: bool) -> Any:
        if vtype in _SCALAR:
            return self.read(_SCALAR[vtype])
        if vtype == 8:
            return self.string(keep)
        if vtype == 9:
            itype, count = self.read("<I"), self.read("<Q")
            if itype in _SCALAR and not keep:
                self.f.seek(struct.calcsize(_SCALAR[itype]) * count, 1)
                return None
            items = [self.value(itype, keep) for _ in range(count)]
            return items if keep else None
        raise InspectError(f"the GGUF header has an unknown value type {vtype} (corrupt?)")


def read_header(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """(metadata without arrays, tensor infos, offset of the data section)."""
    with path.open("rb") as f:
        h = _Header(f)
        if f.read(4) != b"GGUF":
            raise InspectError(f"{path} is not a GGUF file (no GGUF magic)")
        version = h.read("<I")
        if version not in (2, 3):
            raise InspectError(f"{path}: GGUF version {version} is not supported (2 or 3)")
        n_tensors, n_kv = h.read("<Q"), h.read("<Q")
        meta: dict[str, Any] = {}
        for _ in range(n_kv):
            key = h.string()
            vtype = h.read("<I")
            val = h.value(vtype, keep=vtype != 9)  # arrays (the tokenizer's) are skipped
            if key is not None and vtype != 9:
                meta[key] = val
        tensors = []
        for _ in range(n_tensors):
            name = h.string()
            dims = [h.read("<Q") for _ in range(h.read("<I"))]
            tensors.append({"name": name, "shape": dims, "type": h.read("<I"),
                            "offset": h.read("<Q")})
        align = int(meta.get("general.alignment", 32))
        start = f.tell()
        return meta, tensors, (start + align - 1) // align * align


def _hf_name(arch: str, gguf_name: str) -> tuple[str, str | None]:
    parts = gguf_name.removesuffix(".weight").split(".")
    if parts == ["output_norm"]:
        return "model.norm", "final"
    if len(parts) == 3 and parts[0] == "blk" and parts[2] in _PARTS:
        module, role = _PARTS[parts[2]]
        if parts[2] == "ffn_norm" and not arch.startswith("gemma"):
            module = "post_attention_layernorm"  # LLaMA's name for its pre-FFN norm
        prefix = f"model.layers.{parts[1]}."
        return prefix + module, role
    return gguf_name, None


def _stats(v: np.ndarray) -> dict[str, Any]:
    a = np.abs(v)
    big, small = int(np.argmax(a)), int(np.argmin(a))
    return {"dims": int(v.size), "mean": float(v.mean()), "min": float(v.min()),
            "max": float(v.max()), "median_abs": float(np.median(a)),
            "largest": {"dim": big, "value": float(v[big])},
            "smallest_abs": {"dim": small, "value": float(v[small])}}


def norm_weights(path: Path, title: str | None = None) -> dict[str, Any]:
    """The listing `--weights-only` prints (and `--json` emits)."""
    try:
        meta, tensors, data_start = read_header(path)
    except OSError as exc:
        raise InspectError(f"cannot read {path}: {exc.strerror or exc}") from None
    arch = str(meta.get("general.architecture", "?"))
    eps = meta.get(f"{arch}.attention.layer_norm_rms_epsilon",
                   meta.get(f"{arch}.attention.layer_norm_epsilon"))
    size = path.stat().st_size
    layers = []
    for t in tensors:
        if not t["name"].endswith("norm.weight"):
            continue
        n = math.prod(t["shape"])
        dtype = {_F32: np.float32, _F16: np.float16}.get(t["type"])
        if dtype is None:
            raise InspectError(f"{path}: norm tensor {t['name']} is quantized (type "
                               f"{t['type']}); --weights-only reads float32/float16 only")
        begin = data_start + t["offset"]
        if begin + n * np.dtype(dtype).itemsize > size:
            raise InspectError(f"{path}: tensor {t['name']} lies past the end of the file "
                               f"(truncated?)")
        v = np.memmap(path, dtype=dtype, mode="r", offset=begin, shape=(n,)).astype(np.float64)
        name, role = _hf_name(arch, t["name"])
        layers.append({"name": name, "gguf_name": t["name"], "role": role,
                       "eps": None if eps is None else float(eps), "scale": _stats(v)})
    order = list(_PARTS)

    def forward(layer: dict[str, Any]) -> tuple[int, int]:  # blocks in order, final last
        parts = layer["gguf_name"].split(".")
        if len(parts) >= 3 and parts[0] == "blk" and parts[1].isdigit():
            return int(parts[1]), order.index(parts[2]) if parts[2] in order else len(order)
        return (1 << 30, 0)

    layers.sort(key=forward)
    roles: dict[str, int] = {}
    for layer in layers:
        roles[layer["role"] or "other"] = roles.get(layer["role"] or "other", 0) + 1
    return {"kind": "inspect-weights", "file": str(path), "title": title,
            "architecture": arch, "name": meta.get("general.name"),
            "blocks": meta.get(f"{arch}.block_count"),
            "hidden": meta.get(f"{arch}.embedding_length"), "eps": eps,
            "norm_layers": len(layers), "roles": roles, "layers": layers}
