"""The depth measurements of `lnexp inspect`: massive activations per block, kurtosis, the
S-curve, --ablate (intervention, layer skipping) and several models side by side. Each number
is checked against an independent computation on a tiny real model with a planted outlier."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lnexp.inspect import ablate
from lnexp.inspect.core import measure
from lnexp.inspect.curves import fit_tanh
from lnexp.inspect.inputs import Batch, Source
from lnexp.inspect.kurtosis import KurtosisAccumulator
from lnexp.inspect.massive import find_blocks
from lnexp.inspect.models import LoadedModel
from lnexp.inspect.options import InspectOptions
from lnexp.inspect.outcome import document

PLANT = 500.0  # added to block 1's output at token 0, dim 3


class Block(nn.Module):
    def __init__(self, d: int, plant: bool):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.lin = nn.Linear(d, d)
        self.plant = plant

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = h + self.lin(self.norm(h))
        if self.plant:  # a massive activation on the first token, as Sun et al. describe
            bump = torch.zeros_like(out)
            bump[:, 0, 3] = PLANT
            out = out + bump
        return out


class TinyForCausalLM(nn.Module):
    def __init__(self, vocab: int = 13, d: int = 16, n: int = 4):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList([Block(d, i == 1) for i in range(n)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        h = self.emb(input_ids)
        for b in self.layers:
            h = b(h)
        return SimpleNamespace(logits=self.head(self.norm(h)))


class TinyEncoder(TinyForCausalLM):
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        return super().forward(input_ids).logits


class IdSource(Source):
    """Token ids with right padding (the second half of inputs shorter)."""

    kind = "text"

    def __init__(self, n: int = 6, t: int = 9):
        g = torch.Generator().manual_seed(1)
        self.ids = torch.randint(0, 13, (n, t), generator=g)
        self.mask = torch.ones(n, t, dtype=torch.bool)
        self.mask[n // 2:, t - 3:] = False
        self.count = n
        self.description = "ids"

    def batches(self, batch_size: int):
        for s in range(0, self.count, batch_size):
            ids, m = self.ids[s:s + batch_size], self.mask[s:s + batch_size]
            yield Batch(args=(), kwargs={"input_ids": ids, "attention_mask": m.long()},
                        offset=s, size=ids.shape[0], mask=m, token_ids=ids)


def loaded(module: nn.Module) -> LoadedModel:
    return LoadedModel(module.eval(), None, "tiny", "tiny", "test")


def lm_loss(model: nn.Module, src: IdSource) -> float:
    with torch.inference_mode():
        logits = model(src.ids).logits.double()
    nll = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                          src.ids[:, 1:].reshape(-1), reduction="none")
    keep = (src.mask[:, 1:] & src.mask[:, :-1]).reshape(-1)
    return float(nll[keep].mean())


def block_outputs(model: nn.Module, src: IdSource) -> list[torch.Tensor]:
    """Each block's output, real tokens only, as (tokens, dims) float64."""
    outs: list[torch.Tensor] = []
    hooks = [b.register_forward_hook(lambda m, a, o: outs.append(o.detach().double()) and None)
             for b in model.layers]
    with torch.inference_mode():
        model(src.ids)
    for h in hooks:
        h.remove()
    return [o[src.mask] for o in outs]


def test_blocks_are_the_longest_stack_of_norm_holding_modules() -> None:
    m = TinyForCausalLM()
    norms = [mod for mod in m.modules() if isinstance(mod, nn.LayerNorm)]
    blocks = find_blocks(m, norms)
    assert [b.name for b in blocks] == ["layers.0", "layers.1", "layers.2", "layers.3"]
    assert find_blocks(nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8)), norms) == []


def test_massive_activation_found_with_token_dim_and_ratio() -> None:
    model = TinyForCausalLM()
    src = IdSource()
    out = measure(loaded(model), src, InspectOptions(batch_size=4))
    ref = block_outputs(model, src)
    assert [b.name for b in out.massive] == [f"layers.{i}" for i in range(4)]
    for b, r in zip(out.massive, ref, strict=True):
        a = r.abs()
        top = b.top[0]
        assert top.value == pytest.approx(float(r.reshape(-1)[a.reshape(-1).argmax()]))
        median = float(a.median())  # the histogram's bin is ~1.2% wide
        assert b.median_abs == pytest.approx(median, rel=0.02)
        assert top.ratio == pytest.approx(abs(top.value) / b.median_abs)
    planted = out.massive[1].top[0]
    assert (planted.position, planted.dim) == (0, 3) and planted.ratio > 100
    assert out.massive[1].massive_dims(100) == [3]
    doc = document(out)
    entry = doc["massive_activations"][1]
    assert {"token", "dim", "value", "ratio", "block", "depth"} <= set(entry)
    assert entry["dim"] == 3 and entry["position"] == 0 and entry["depth"] == pytest.approx(1 / 3)
    json.dumps(doc, allow_nan=False)


def test_kurtosis_streams_to_the_one_pass_value() -> None:
    g = torch.Generator().manual_seed(2)
    chunks = [torch.randn(n, 7, generator=g, dtype=torch.float64) * s + o
              for n, s, o in ((3, 1.0, 5.0), (50, 2.0, -1.0), (1, 30.0, 0.0), (200, 0.5, 2.0))]
    acc = KurtosisAccumulator()
    for c in chunks:
        acc.update(c)
    x = torch.cat(chunks).reshape(-1).numpy()
    d = x - x.mean()
    want = float(np.mean(d ** 4) / np.mean(d ** 2) ** 2)
    got = acc.result()
    assert got.kurtosis == pytest.approx(want, rel=1e-10)
    assert got.absmax == float(np.abs(x).max()) and got.count == x.size
    big = KurtosisAccumulator()
    big.update(torch.randn(200_000, generator=g, dtype=torch.float64).reshape(-1, 10))
    assert big.result().kurtosis == pytest.approx(3.0, abs=0.05)  # a Gaussian


def test_kurtosis_of_each_norm_input_and_output() -> None:
    model = TinyForCausalLM()
    src = IdSource()
    captured: dict[str, list[torch.Tensor]] = {"in": [], "out": []}
    norm = model.layers[2].norm

    def keep(m, a, o) -> None:
        captured["in"].append(a[0].double())
        captured["out"].append(o.double())

    h = norm.register_forward_hook(keep)
    out = measure(loaded(model), src, InspectOptions(batch_size=4))
    h.remove()
    layer = next(r for r in out.layers if r.name == "layers.2.norm")
    mask = [src.mask[:4], src.mask[4:]]
    for stage, tails in (("in", layer.tails_pre), ("out", layer.tails_post)):
        x = torch.cat([t[m] for t, m in zip(captured[stage], mask, strict=True)]).reshape(-1)
        d = (x - x.mean()).numpy()
        assert tails.kurtosis == pytest.approx(np.mean(d ** 4) / np.mean(d ** 2) ** 2, rel=1e-9)
        assert tails.absmax == pytest.approx(float(x.abs().max()))
    assert document(out)["layers"][0]["kurtosis"]["pre"]["kurtosis"] > 0


def test_s_curve_points_are_the_normalized_input_and_the_fit_recovers_alpha() -> None:
    x = np.linspace(-60, 60, 801)
    alpha, r2 = fit_tanh(x, 7.0 * np.tanh(0.13 * x), 7.0)
    assert alpha == pytest.approx(0.13, rel=1e-5) and r2 == pytest.approx(1.0, abs=1e-9)
    model = TinyForCausalLM()
    src = IdSource()
    ins: list[torch.Tensor] = []
    norm = model.layers[3].norm
    h = norm.register_forward_hook(lambda m, a, o: ins.append(a[0].double()) and None)
    out = measure(loaded(model), src, InspectOptions(batch_size=6, curve_layers=2))
    h.remove()
    assert [c.name for c in out.curves] == ["layers.0.norm", "norm"]
    rows = ins[0][src.mask]
    xhat = F.layer_norm(rows, (16,), eps=norm.eps)  # before γ, β
    table = dict(zip(rows.reshape(-1).tolist(), xhat.reshape(-1).tolist(), strict=True))
    one = measure(loaded(model), src, InspectOptions(batch_size=6, curve_layers=5))
    c = next(c for c in one.curves if c.name == "layers.3.norm")
    assert c.x.size > 100
    for xv, zv in zip(c.x, c.xhat, strict=True):
        assert table[float(xv)] == pytest.approx(float(zv), rel=1e-9, abs=1e-12)
    assert c.scale == pytest.approx(float(xhat.abs().max()))
    assert document(one)["s_curves"][0]["alpha"] > 0


def _with_hook(model: nn.Module, block: int, fn) -> float:
    h = model.layers[block].register_forward_hook(lambda m, a, o: fn(a[0], o))
    try:
        return lm_loss(model, IdSource())
    finally:
        h.remove()


def test_ablation_matches_hand_made_interventions() -> None:
    model = TinyForCausalLM()
    src = IdSource()
    opts = InspectOptions(batch_size=4, ablate=True)
    out = measure(loaded(model), src, opts)
    a = ablate.run(loaded(model), src, opts, out.blocks, out.massive)
    assert a.measure == "next_token_loss"
    assert a.baseline == pytest.approx(lm_loss(model, src), rel=1e-9)
    iv = a.intervention
    assert iv is not None and iv.block == "layers.1" and iv.dims == [3]
    assert iv.entries == src.count  # token 0 of every input
    ref = block_outputs(model, src)[1]
    firsts = [int(src.mask[:i].sum()) for i in range(src.count)]  # row of each token 0
    mean = float(ref[firsts, 3].mean())
    assert iv.means[3] == pytest.approx(mean, rel=1e-6)

    def set_first(value: float):
        def fn(_x, o):
            o = o.clone()
            o[:, 0, 3] = value
            return o
        return fn

    zero = _with_hook(model, 1, set_first(0.0))
    to_mean = _with_hook(model, 1, set_first(mean))
    assert iv.zeroed == pytest.approx(zero, rel=1e-6)
    assert iv.mean == pytest.approx(to_mean, rel=1e-6)
    assert math.isfinite(iv.random) and iv.random != a.baseline  # entries were changed
    for i, s in enumerate(a.skips):
        assert s.value == pytest.approx(_with_hook(model, i, lambda x, o: x), rel=1e-9)
    doc = ablate.ablation_dict(a, float)
    assert doc["intervention"]["zeroed_delta"] == pytest.approx(iv.zeroed - a.baseline)
    assert len(doc["skip"]) == 4 and a.forwards == 1 + 1 + 3 + 4


def test_ablation_of_an_encoder_measures_the_output_change() -> None:
    model = TinyEncoder()
    src = IdSource()
    opts = InspectOptions(batch_size=6, ablate=True, massive_ratio=1e9)
    out = measure(loaded(model), src, opts)
    a = ablate.run(loaded(model), src, opts, out.blocks, out.massive)
    assert a.measure == "output_change" and a.baseline == 0.0 and a.intervention is None
    assert "no block" in (a.note or "")
    with torch.inference_mode():
        ref = model(src.ids).double()[src.mask]
    h = model.layers[2].register_forward_hook(lambda m, args, o: args[0])
    with torch.inference_mode():
        skipped = model(src.ids).double()[src.mask]
    h.remove()
    want = math.sqrt(float(((skipped - ref) ** 2).sum() / (ref ** 2).sum()))
    assert a.skips[2].value == pytest.approx(want, rel=1e-9)


STACKS = '''
import torch
from torch import nn

class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.lin = nn.Linear(d, d)

    def forward(self, h):
        return h + self.lin(self.norm(h))

class Stack(nn.Module):
    def __init__(self, n):
        super().__init__()
        torch.manual_seed(n)
        self.blocks = nn.ModuleList([Block(8) for _ in range(n)])

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x

def three():
    return Stack(3)

def five():
    return Stack(5)
'''


@pytest.fixture
def stacks(tmp_path: Path) -> Path:
    path = tmp_path / "stacks.py"
    path.write_text(STACKS)
    return path


def test_several_models_side_by_side(invoke, tmp_path: Path, stacks: Path) -> None:
    out = tmp_path / "out"
    r = invoke("inspect", f"{stacks}:three", f"{stacks}:five", "--random", "4,6,8", "-b", "2",
               "--ablate", "-o", str(out))
    assert r.exit_code == 0, r.output
    assert "massive activations" in r.stdout and "kurtosis" in r.stdout
    run_dir = next((out / "inspect-stacks+stacks-2").iterdir())
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    doc = json.loads((run_dir / "side_by_side.json").read_text())
    assert [m["folder"] for m in doc["models"]] == ["stacks", "stacks-2"]
    assert [m["blocks"] for m in doc["models"]] == [3, 5]
    for m in doc["models"]:
        assert {"massive", "kurtosis", "s_curve", "int8", "ablation"} <= set(m["measurements"])
        child = json.loads((run_dir / m["folder"] / "inspect.json").read_text())
        assert len(child["massive_activations"]) == m["blocks"]
        assert child["ablation"]["measure"] == "output_change"
    assert {p.name for p in (run_dir / "figures").iterdir()} == \
        {"massive.png", "kurtosis.png", "alpha.png", "int8.png", "layer_skip.png"}
    assert (run_dir / "side_by_side.csv").read_text().startswith("model,measurement,field")
    import lnexp

    loaded_back = lnexp.load(run_dir)
    assert loaded_back.metrics["kind"] == "inspect_side_by_side"
    assert loaded_back.verdict == "stacks + stacks-2: side by side"
    assert lnexp.load(run_dir / "stacks").metrics["massive_activations"]
    rows = loaded_back.table()  # side_by_side.csv: a side-by-side folder has no layers.csv
    assert {r["model"] for r in rows} == {"stacks", "stacks-2"} and rows[0]["measurement"]
    assert list(loaded_back.models) == ["stacks", "stacks-2"]
    assert loaded_back.models["stacks-2"].table()  # the child's own layers.csv
    r = invoke("inspect", f"{stacks}:three", f"{stacks}:five", "--random", "4,6,8", "--json",
               "--no-figures", "-o", str(out), "--expect", "models.*.blocks.min >= 3")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["expectations"][0]["passed"]


def test_single_model_folder_gains_the_depth_figures(invoke, tmp_path: Path,
                                                     stacks: Path) -> None:
    r = invoke("inspect", f"{stacks}:three", "--random", "4,6,8", "--json", "-o",
               str(tmp_path / "o"))
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    run_dir = Path(doc["run_dir"])
    assert run_dir.parent.name == "inspect-stacks" and not (run_dir / "side_by_side.json").exists()
    assert doc["ablation"] is None and len(doc["massive_activations"]) == 3
    assert {p.name for p in (run_dir / "figures").iterdir()} == {
        "absmax.png", "token_variance.png", "weights.png", "massive.png", "kurtosis.png",
        "s_curves.png"}
    import matplotlib.image as mpimg

    png = mpimg.imread(run_dir / "figures" / "s_curves.png")
    assert png.shape[0] > 200 and png[..., :3].std() > 0.05  # drawn, not blank


SENTENCES = ("A cat sat on the mat.", "Paris is the capital of France.",
             "Stock markets fell sharply on Monday after the announcement.")


@pytest.mark.slow
def test_smollm2_massive_activation_on_the_first_token_and_the_intervention() -> None:
    """Sun et al. 2024 on SmolLM2-135M (the real GGUF package, via the model cache): the
    largest block output sits on the first token at ≥ 1,000× the median; zeroing the massive
    entries wrecks the loss, setting them to their mean or zeroing random entries does not."""
    from lnexp.inspect import InputSpec, run_inspect

    out = run_inspect("smollm2", InputSpec(texts=SENTENCES),
                      InspectOptions(ablate=True, curve_layers=2))
    assert len(out.massive) == 30
    peak = max(out.massive, key=lambda b: b.top[0].ratio).top[0]
    assert peak.position == 0 and peak.ratio >= 1000, peak
    a = out.ablation
    assert a is not None and a.measure == "next_token_loss"
    iv = a.intervention
    assert iv is not None and peak.dim in iv.dims
    assert iv.zeroed - a.baseline > 2.0, iv
    assert abs(iv.mean - a.baseline) < 0.5 and abs(iv.random - a.baseline) < 0.5, iv
    assert max(s.value for s in a.skips) - a.baseline > 1.0  # some block is indispensable
