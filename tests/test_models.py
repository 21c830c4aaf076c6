"""The StyleLipSync network: shapes, MaLS, SaMF, streaming = full pass, checkpoints, gradients, SyncNet.

Everything here runs on random weights and random tensors: these are properties of the architecture
and of the checkpoint code, true for any weights. The 'paper' config is only built and run once
(batch 1, one frame, no backward) to keep the file fast on a 2-core CPU.
"""

from __future__ import annotations

import dataclasses
import pathlib
import pickle

import pytest
import torch

from lipsync_core.errors import ModelError
from lipsync_core.models.checkpoint import MODEL_VERSION, load_checkpoint, read_metadata, save_checkpoint
from lipsync_core.models.config import CONFIGS, ModelConfig, get_config
from lipsync_core.models.decoder import SaMF
from lipsync_core.models.mals import MaLS
from lipsync_core.models.stylelipsync import StyleLipSync
from lipsync_core.models.syncnet import SyncNet
from lipsync_core.train.generator_trainer import generator_losses

CPU = get_config("cpu")
PAPER = get_config("paper")


def make_inputs(config: ModelConfig, b: int, t: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random clip window: masked frames with the lower half blanked, mask, reference, mel windows."""
    g = torch.Generator().manual_seed(seed)
    s = config.size
    frames = torch.rand(b, t, 3, s, s, generator=g) * 2 - 1
    mask = torch.zeros(b, t, 1, s, s)
    mask[..., s // 2 :, :] = 1
    return {
        "frames": frames,
        "masked": frames * (1 - mask),
        "mask": mask,
        "ref": torch.rand(b, 3, s, s, generator=g) * 2 - 1,
        "mels": torch.randn(b, t, config.mel_window, config.n_mels, generator=g),
    }


def randomise_mals(model: StyleLipSync, seed: int = 1) -> None:
    """MaLS's temporal conv is zero-initialised; give it weights so the tests see the conv's context too."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.mals.temporal.weight.copy_(torch.randn(model.mals.temporal.weight.shape, generator=g) * 0.05)
        model.mals.temporal.bias.copy_(torch.randn(model.mals.temporal.bias.shape, generator=g) * 0.05)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cpu_model() -> StyleLipSync:
    torch.manual_seed(0)
    model = StyleLipSync(CPU)
    randomise_mals(model)
    return model.eval()


# --- shapes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [1, 2, 5])
def test_cpu_config_shapes(cpu_model: StyleLipSync, t: int) -> None:
    x = make_inputs(CPU, 2, t)
    with torch.no_grad():
        codes = cpu_model.codes(x["ref"], x["mels"])
        out = cpu_model(x["masked"], x["mask"], x["ref"], x["mels"])
    assert codes.shape == (2, t, CPU.n_codes, CPU.w_dim) == (2, t, 12, 128)
    assert out.shape == (2, t, 3, 128, 128)
    assert torch.isfinite(out).all()
    # The two samples of the batch differ (no batch coupling collapsing them to one output).
    assert not torch.allclose(out[0], out[1])


def test_cpu_config_face_features_at_every_decoder_resolution(cpu_model: StyleLipSync) -> None:
    x = make_inputs(CPU, 1, 1)
    with torch.no_grad():
        feats = cpu_model.face_encoder(torch.cat([x["masked"][:, 0], x["mask"][:, 0], x["ref"]], dim=1))
    assert sorted(feats) == CPU.resolutions == [4, 8, 16, 32, 64, 128]
    for r, f in feats.items():
        assert f.shape == (1, CPU.channels[r], r, r)


def test_paper_config_shapes() -> None:
    torch.manual_seed(0)
    model = StyleLipSync(PAPER).eval()
    x = make_inputs(PAPER, 1, 1)
    with torch.no_grad():
        codes = model.codes(x["ref"], x["mels"])
        out = model.decode(x["masked"][:, 0], x["mask"][:, 0], x["ref"], codes[:, 0])
    assert codes.shape == (1, 1, PAPER.n_codes, PAPER.w_dim) == (1, 1, 14, 512)
    assert out.shape == (1, 3, 256, 256)
    assert torch.isfinite(out).all()
    # config-f widths: 512 up to 64 px, then 256, 128.
    assert model.decoder.blocks[-1].conv2.conv.weight.shape[:2] == (128, 128)
    assert model.decoder.blocks[0].conv1.conv.weight.shape[:2] == (512, 512)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_json_round_trip(name: str) -> None:
    config = get_config(name)
    assert ModelConfig.from_json(config.to_json()) == config


# --- MaLS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [1, 2, 3, 8])
def test_mals_keeps_constant_codes(t: int) -> None:
    mals = MaLS(16, CPU.mals_weights)
    assert sum(CPU.mals_weights) == 1.0
    # Constant over time, different per slot and channel.
    a = torch.randn(2, 1, 4, 16).expand(2, t, 4, 16).contiguous()
    assert torch.equal(mals.moving_average(a), a)
    # Untrained, the learned conv is zero: the whole of MaLS is the moving average.
    assert torch.equal(mals(a), a)


def _naive_moving_average(a: torch.Tensor, weights) -> torch.Tensor:
    t = a.shape[1]
    out = torch.zeros_like(a)
    for s in range(t):
        for k, w in zip((-1, 0, 1), weights):
            out[:, s] += w * a[:, min(max(s + k, 0), t - 1)]
    return out


@pytest.mark.parametrize("t", [1, 2, 3, 6])
def test_mals_impulse_spreads_to_neighbours_only(t: int) -> None:
    mals = MaLS(8, CPU.mals_weights)
    for pos in range(t):
        a = torch.zeros(1, t, 3, 8)
        a[0, pos, 1, 5] = 1.0  # one frame, one slot, one channel
        avg = mals.moving_average(a)
        touched = set(torch.nonzero(avg[0, :, 1, 5]).flatten().tolist())
        assert touched == {s for s in (pos - 1, pos, pos + 1) if 0 <= s < t}
        # Nothing leaks into other slots or channels.
        others = avg.clone()
        others[0, :, 1, 5] = 0
        assert not others.any()
        # Exactly the (0.25, 0.5, 0.25) weights, with the edges replicated.
        assert torch.allclose(avg, _naive_moving_average(a, CPU.mals_weights), atol=0, rtol=0)
        if 0 < pos < t - 1:
            assert avg[0, pos - 1 : pos + 2, 1, 5].tolist() == [0.25, 0.5, 0.25]
        assert avg.sum().item() == pytest.approx(1.0)  # the average neither gains nor loses mass


def test_mals_full_reach_is_context_frames() -> None:
    """With a trained (non-zero) temporal conv an impulse reaches exactly t-CONTEXT..t+CONTEXT."""
    torch.manual_seed(0)
    mals = MaLS(8, CPU.mals_weights)
    with torch.no_grad():
        mals.temporal.weight.normal_()
        mals.temporal.bias.zero_()
    t, pos = 11, 5
    a = torch.zeros(1, t, 2, 8)
    a[0, pos, 0] = torch.randn(8)
    with torch.no_grad():
        out = mals(a)
    touched = set(torch.nonzero(out.abs().sum(dim=(0, 2, 3))).flatten().tolist())
    assert touched == set(range(pos - MaLS.CONTEXT, pos + MaLS.CONTEXT + 1))


# --- SaMF ---------------------------------------------------------------------------------------


def test_samf_mask_one_passes_encoder_feature_and_zero_passes_decoder() -> None:
    torch.manual_seed(0)
    samf = SaMF(16, 32)
    decoded, face, w = torch.randn(2, 16, 8, 8), torch.randn(2, 16, 8, 8), torch.randn(2, 32)
    with torch.no_grad():
        samf.bias.fill_(1e4)
        assert torch.equal(samf(decoded, face, w), face)
        samf.bias.fill_(-1e4)
        assert torch.equal(samf(decoded, face, w), decoded)
        samf.bias.zero_()
        mixed = samf(decoded, face, w)
        s = samf.mask(face, w)
    assert s.shape == (2, 1, 8, 8) and ((s > 0) & (s < 1)).all()
    assert torch.allclose(mixed, s * face + (1 - s) * decoded)


def test_samf_mask_one_in_every_block_makes_the_decoder_follow_the_encoder() -> None:
    """S = 1 everywhere: each block's fused feature is E_face's, so G's constant input no longer matters."""
    torch.manual_seed(0)
    model = StyleLipSync(CPU).eval()
    with torch.no_grad():
        for block in model.decoder.blocks:
            block.samf.bias.fill_(1e4)
    fused, face = {}, {}
    hooks = [b.samf.register_forward_hook(lambda mod, inp, out, r=r: fused.__setitem__(r, out))
             for r, b in zip(model.decoder.resolutions, model.decoder.blocks)]
    hooks.append(model.face_encoder.register_forward_hook(lambda mod, inp, out: face.update(out)))
    x = make_inputs(CPU, 1, 1)
    with torch.no_grad():
        out = model(x["masked"], x["mask"], x["ref"], x["mels"])
        for r in CPU.resolutions:
            assert torch.equal(fused[r], face[r])
        model.decoder.const.add_(torch.randn_like(model.decoder.const))
        again = model(x["masked"], x["mask"], x["ref"], x["mels"])
    for h in hooks:
        h.remove()
    assert torch.equal(out, again)


# --- streaming --------------------------------------------------------------------------------


def test_codes_then_chunked_decode_equals_full_forward(cpu_model: StyleLipSync) -> None:
    b, t = 2, 5
    x = make_inputs(CPU, b, t, seed=3)
    with torch.no_grad():
        full = cpu_model(x["masked"], x["mask"], x["ref"], x["mels"])
        codes = cpu_model.codes(x["ref"], x["mels"])
        for i in range(b):
            chunks = []
            for start in range(0, t, 2):  # chunks of 2, 2, 1 frames
                sl = slice(start, start + 2)
                n = x["masked"][i, sl].shape[0]
                chunks.append(cpu_model.decode(x["masked"][i, sl], x["mask"][i, sl], x["ref"][i : i + 1].expand(n, -1, -1, -1), codes[i, sl]))
            streamed = torch.cat(chunks)
            assert torch.allclose(streamed, full[i], atol=1e-5, rtol=0), (streamed - full[i]).abs().max()


@pytest.mark.parametrize("start,stop", [(0, 3), (4, 9), (10, 12), (5, 6)])
def test_frame_range_with_context_gives_full_sequence_codes(cpu_model: StyleLipSync, start: int, stop: int) -> None:
    t, c = 12, MaLS.CONTEXT
    x = make_inputs(CPU, 1, t, seed=4)
    with torch.no_grad():
        full = cpu_model.codes(x["ref"], x["mels"])
        lo, hi = max(0, start - c), min(t, stop + c)
        part = cpu_model.codes(x["ref"], x["mels"][:, lo:hi])[:, start - lo : stop - lo]
        assert torch.allclose(part, full[:, start:stop], atol=1e-6, rtol=0)
        # One frame of context less is not enough for an interior range: CONTEXT is tight.
        if start - c >= 0:
            short = cpu_model.codes(x["ref"], x["mels"][:, start - c + 1 : hi])[:, c - 1 : c - 1 + stop - start]
            assert not torch.allclose(short, full[:, start:stop], atol=1e-6, rtol=0)


def test_eval_is_deterministic_and_training_noise_is_not(cpu_model: StyleLipSync) -> None:
    model = StyleLipSync(CPU)
    with torch.no_grad():
        for block in model.decoder.blocks:  # noise strength is zero-initialised
            block.conv1.noise.strength.fill_(0.5)
    x = make_inputs(CPU, 1, 1)
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(x["masked"], x["mask"], x["ref"], x["mels"]), model(x["masked"], x["mask"], x["ref"], x["mels"]))
        model.train()
        assert not torch.equal(model(x["masked"], x["mask"], x["ref"], x["mels"]), model(x["masked"], x["mask"], x["ref"], x["mels"]))


# --- checkpoints --------------------------------------------------------------------------------


def test_checkpoint_round_trip_is_exact(cpu_model: StyleLipSync, tmp_path: pathlib.Path) -> None:
    torch.manual_seed(5)
    syncnet = SyncNet(CPU).eval()
    path = tmp_path / "model.safetensors"
    facts = {"step": 123, "data": ["a", "b"], "dev_l1": 0.25}
    save_checkpoint(path, {"generator": cpu_model, "syncnet": syncnet}, CPU, facts)
    assert not list(tmp_path.glob("*.tmp"))  # written atomically, no leftovers

    torch.manual_seed(6)  # different initial weights
    gen2, sync2 = StyleLipSync(CPU).eval(), SyncNet(CPU).eval()
    assert load_checkpoint(path, {"generator": gen2, "syncnet": sync2}, CPU) == facts
    assert read_metadata(path) == (CPU, facts)
    for a, b in [(cpu_model, gen2), (syncnet, sync2)]:
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)

    x = make_inputs(CPU, 1, 3)
    with torch.no_grad():
        assert torch.equal(cpu_model(x["masked"], x["mask"], x["ref"], x["mels"]), gen2(x["masked"], x["mask"], x["ref"], x["mels"]))
        frames = x["frames"][:, [0, 1, 2, 1, 0]]
        assert torch.equal(syncnet.similarity(frames, x["mels"][:, 1]), sync2.similarity(frames, x["mels"][:, 1]))


def test_checkpoint_config_mismatch_is_refused(cpu_model: StyleLipSync, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, {"generator": cpu_model}, CPU)
    with pytest.raises(ModelError) as info:
        load_checkpoint(path, {"generator": cpu_model}, PAPER)
    message = str(info.value)
    assert "'cpu'" in message and "'paper'" in message and "model.safetensors" in message


def test_checkpoint_shape_mismatch_is_refused(cpu_model: StyleLipSync, tmp_path: pathlib.Path) -> None:
    narrow = dataclasses.replace(CPU, name="cpu-narrow", w_dim=64)
    path = tmp_path / "narrow.safetensors"
    torch.manual_seed(0)
    save_checkpoint(path, {"generator": StyleLipSync(narrow)}, narrow)
    before = {k: v.clone() for k, v in cpu_model.state_dict().items()}
    # Without a config to compare, the tensors themselves do not fit.
    with pytest.raises(ModelError) as info:
        load_checkpoint(path, {"generator": cpu_model})
    message = str(info.value)
    assert "'generator'" in message and "'cpu-narrow'" in message and "'cpu'" in message
    # With one, the config check refuses it first.
    with pytest.raises(ModelError, match="cpu-narrow"):
        load_checkpoint(path, {"generator": cpu_model}, CPU)
    # A file without weights for a requested module is refused too.
    with pytest.raises(ModelError, match="'syncnet'"):
        load_checkpoint(path, {"syncnet": SyncNet(narrow)}, narrow)
    after = cpu_model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


class _Tripwire:
    """Unpickling this creates a file: proof that a loader unpickled."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.mark.parametrize("name", ["model.pt", "model.pth", "model.ckpt", "model.safetensors"])
def test_pickles_are_never_unpickled(tmp_path: pathlib.Path, name: str) -> None:
    marker = tmp_path / "unpickled"
    path = tmp_path / name
    torch.save({"generator": _Tripwire(marker)}, path)  # a real torch pickle (zip) with a payload
    assert pickle.loads(pickle.dumps(_Tripwire(marker))) is None and marker.exists()  # the payload works
    marker.unlink()
    for load in (lambda: read_metadata(path), lambda: load_checkpoint(path, {"generator": StyleLipSync(CPU)}, CPU)):
        with pytest.raises(ModelError) as info:
            load()
        assert str(path) in str(info.value)
        if path.suffix != ".safetensors":
            assert ".safetensors" in str(info.value)
    assert not marker.exists()


def test_missing_and_foreign_model_files_are_refused(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        read_metadata(tmp_path / "absent.safetensors")
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(other), metadata={"format": "something-else"})
    with pytest.raises(ModelError, match=MODEL_VERSION):
        read_metadata(other)


# --- training step, SyncNet ---------------------------------------------------------------------


def test_one_training_step_reaches_every_trainable_parameter() -> None:
    torch.manual_seed(0)
    model = StyleLipSync(CPU).train()
    syncnet = SyncNet(CPU).eval().requires_grad_(False)  # frozen, as in training
    x = make_inputs(CPU, 1, 5, seed=7)
    weights = torch.ones_like(x["mask"])
    weights[..., 80:112, 40:88] = 5  # a mouth box, as the sampler's weights
    batch = {"frames": x["frames"], "masks": x["mask"], "weights": weights, "ref": x["ref"], "mels": x["mels"]}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}

    losses = generator_losses(model, syncnet, batch, lambda_rec=10.0, lambda_sync=0.1)
    assert {"l1", "structural", "sync", "loss"} <= losses.keys()
    assert all(torch.isfinite(v) for v in losses.values())
    opt.zero_grad(set_to_none=True)
    losses["loss"].backward()

    params = dict(model.named_parameters())
    assert params and all(p.requires_grad for p in params.values())
    no_grad = [n for n, p in params.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad, f"no gradient reaches: {no_grad}"
    assert all(torch.isfinite(p.grad).all() for p in params.values())
    assert all(p.grad is None for p in syncnet.parameters())
    opt.step()
    unchanged = [n for n, p in params.items() if torch.equal(p, before[n])]
    assert not unchanged, f"not updated by the step: {unchanged}"


def test_sync_loss_alone_reaches_the_audio_path() -> None:
    """The SyncNet term must drive the audio encoder and MaLS, not only the image path."""
    torch.manual_seed(0)
    model = StyleLipSync(CPU).train()
    syncnet = SyncNet(CPU).eval().requires_grad_(False)
    x = make_inputs(CPU, 1, 5, seed=8)
    batch = {"frames": x["frames"], "masks": x["mask"], "weights": torch.ones_like(x["mask"]), "ref": x["ref"], "mels": x["mels"]}
    generator_losses(model, syncnet, batch, lambda_rec=0.0, lambda_sync=1.0)["loss"].backward()
    for module in (model.audio_encoder, model.mals):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_syncnet_embeddings_are_unit_length(name: str) -> None:
    config = get_config(name)
    torch.manual_seed(0)
    syncnet = SyncNet(config).eval()
    x = make_inputs(config, 3, config.syncnet_frames, seed=9)
    with torch.no_grad():
        video = syncnet.embed_video(x["frames"] * 3)  # scale must not matter
        audio = syncnet.embed_audio(x["mels"][:, 2] * 10)
        sim = syncnet.similarity(x["frames"], x["mels"][:, 2])
    assert video.shape == audio.shape == (3, config.embed_dim)
    for e in (video, audio):
        assert torch.allclose(e.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert ((sim >= -1 - 1e-5) & (sim <= 1 + 1e-5)).all()
    with torch.no_grad():
        assert torch.allclose(sim, (syncnet.embed_video(x["frames"]) * syncnet.embed_audio(x["mels"][:, 2])).sum(-1), atol=1e-6)
