"""`HFClipEncoder` (``hf:<model>``) on tiny, randomly initialised CLIP models saved to temp dirs.

Everything is real: a real ``CLIPModel`` built from a small ``CLIPConfig`` and saved as safetensors,
a real byte-level BPE ``CLIPTokenizer`` built offline from a tiny vocabulary, a real PIL image
processor and real photos. No network: hub-style loading goes through a hand-built hub cache with
``HF_HUB_OFFLINE`` set. This checks loading, preprocessing, batching, normalisation and the
fine-tuning hooks - not embedding quality.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from PIL import Image

from modalchorus.encoders.base import Encoder
from modalchorus.encoders.hf_clip import HFClipEncoder
from modalchorus.encoders.registry import UnknownEncoderError, create_encoder

DIM = 16
MAX_POSITIONS = 16
# Merges so the BPE does more than split into characters ("photo", "the" become one token).
MERGES = [("p", "h"), ("ph", "o"), ("pho", "t"), ("phot", "o</w>"), ("t", "h"), ("th", "e</w>")]
OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]


def _byte_level_alphabet() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes (GPT-2 / CLIP mapping)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return [chr(c) for c in cs]


def _tiny_tokenizer():
    """A CLIP tokenizer over single bytes (+ a few merges): covers any text, needs no download."""
    from transformers import CLIPTokenizer

    alphabet = _byte_level_alphabet()
    tokens = alphabet + [c + "</w>" for c in alphabet] + [a + b for a, b in MERGES]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=list(MERGES))


def _save_tiny_clip(out: Path, seed: int, legacy_preprocessor: bool = True) -> Path:
    """Save a tiny random CLIPModel + tokenizer + image-processor config to ``out``."""
    from transformers import CLIPConfig, CLIPModel

    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _tiny_tokenizer()
    tokenizer.save_pretrained(out)
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": MAX_POSITIONS,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=DIM,
    )
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(out, safe_serialization=True)
    # Image-processor configs as found on the hub: the legacy openai/clip-* format and the
    # current one (written by hand so that neither names a torchvision class).
    if legacy_preprocessor:
        processor = {
            "feature_extractor_type": "CLIPFeatureExtractor",
            "size": 32,
            "crop_size": 32,
        }
    else:
        processor = {
            "image_processor_type": "CLIPImageProcessor",
            "size": {"shortest_edge": 32},
            "crop_size": {"height": 32, "width": 32},
        }
    processor |= {
        "do_resize": True,
        "do_center_crop": True,
        "do_normalize": True,
        "do_convert_rgb": True,
        "image_mean": OPENAI_MEAN,
        "image_std": OPENAI_STD,
        "resample": 3,
    }
    (out / "preprocessor_config.json").write_text(json.dumps(processor, indent=2))
    return out


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf_clip")
    return {
        "a": _save_tiny_clip(root / "clip_a", seed=0, legacy_preprocessor=True),
        "b": _save_tiny_clip(root / "clip_b", seed=1, legacy_preprocessor=False),
    }


@pytest.fixture(scope="module")
def encoder(model_dirs: dict[str, Path]) -> HFClipEncoder:
    enc = create_encoder("hf:" + str(model_dirs["a"]), device="cpu")
    assert isinstance(enc, HFClipEncoder)
    return enc


@pytest.fixture(scope="module")
def images(data_dir: Path) -> list[Image.Image]:
    paths = sorted((data_dir / "coco_mini_captions" / "images").glob("*.jpg"))[:6]
    assert len(paths) == 6
    photos = [Image.open(p).convert("RGB") for p in paths]
    # Other modes and sizes the processor must cope with.
    grey = photos[0].convert("L")
    rgba = photos[1].resize((40, 20)).convert("RGBA")
    return [*photos, grey, rgba]


@pytest.fixture(scope="module")
def texts(data_dir: Path) -> list[str]:
    records = json.loads((data_dir / "coco_mini_captions" / "captions.json").read_text())
    captions = [c for r in records[:3] for c in r["captions"][:2]]
    # A caption far longer than the 16-position text tower, and an empty one.
    return [*captions, "a photo of " + "a very long sentence " * 20, ""]


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hub offline mode; huggingface_hub reads the variable at import, so patch the constant too."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def _assert_unit_rows(x: np.ndarray, n: int) -> None:
    assert x.shape == (n, DIM)
    assert x.dtype == np.float32
    assert np.all(np.isfinite(x))
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_registry_builds_the_encoder(encoder: HFClipEncoder, model_dirs: dict[str, Path]) -> None:
    assert isinstance(encoder, Encoder)
    assert encoder.dim == DIM
    assert encoder.device == "cpu"
    assert encoder.id.startswith(f"hf:{model_dirs['a'].resolve()}@")
    assert len(encoder.id.rsplit("@", 1)[1]) == 12
    assert not encoder.model.training
    assert next(encoder.model.parameters()).dtype == torch.float32
    # Truncation follows the text tower, not the tokenizer's (unset, huge) model_max_length.
    assert encoder.max_text_length == MAX_POSITIONS


def test_image_processor_needs_no_torchvision(encoder: HFClipEncoder) -> None:
    # (torchvision is not installed in the dev environment, so loading itself proves this there.)
    # Neither the transformers 5 torchvision backend nor a 4.x "fast" processor.
    bases = [cls.__name__ for cls in type(encoder.image_processor).__mro__]
    assert not any("Torchvision" in name or name.endswith("Fast") for name in bases), bases


def test_image_embeddings(encoder: HFClipEncoder, images: list[Image.Image]) -> None:
    emb = encoder.encode_images(images)
    _assert_unit_rows(emb, len(images))
    # Random weights, different photos: the rows are not all the same vector.
    assert np.ptp(emb[:6] @ emb[:6].T) > 1e-3


def test_text_embeddings(encoder: HFClipEncoder, texts: list[str]) -> None:
    emb = encoder.encode_texts(texts)
    _assert_unit_rows(emb, len(texts))
    assert np.ptp(emb @ emb.T) > 1e-3


def test_batching_does_not_change_vectors(
    encoder: HFClipEncoder, images: list[Image.Image], texts: list[str]
) -> None:
    np.testing.assert_allclose(
        encoder.encode_images(images, batch_size=1),
        encoder.encode_images(images, batch_size=64),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        encoder.encode_texts(texts, batch_size=1),
        encoder.encode_texts(texts, batch_size=256),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        encoder.encode_texts(texts, batch_size=3, progress=True),
        encoder.encode_texts(texts),
        atol=1e-5,
    )


def test_matches_transformers_projected_features(
    encoder: HFClipEncoder, images: list[Image.Image], texts: list[str]
) -> None:
    """Our features equal CLIPModel.get_*_features (a tensor in 4.x, an output object in 5.x)."""

    def as_tensor(out: object) -> torch.Tensor:
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    model = encoder.model
    pixels = encoder.image_processor(images=images, return_tensors="pt")["pixel_values"]
    assert pixels.shape == (len(images), 3, 32, 32)
    tokens = encoder.tokenizer(
        texts, padding=True, truncation=True, max_length=MAX_POSITIONS, return_tensors="pt"
    )
    with torch.inference_mode():
        ref_img = as_tensor(model.get_image_features(pixel_values=pixels))
        ref_txt = as_tensor(model.get_text_features(**tokens))
    ref_img = torch.nn.functional.normalize(ref_img, dim=-1).numpy()
    ref_txt = torch.nn.functional.normalize(ref_txt, dim=-1).numpy()
    np.testing.assert_allclose(encoder.encode_images(images), ref_img, atol=1e-5)
    np.testing.assert_allclose(encoder.encode_texts(texts), ref_txt, atol=1e-5)


def test_deterministic_and_reloadable(
    encoder: HFClipEncoder, model_dirs: dict[str, Path], images: list[Image.Image], texts: list[str]
) -> None:
    first = encoder.encode_images(images)
    np.testing.assert_array_equal(first, encoder.encode_images(images))
    again = create_encoder("hf:" + str(model_dirs["a"]), device="cpu")
    assert again.id == encoder.id
    np.testing.assert_allclose(again.encode_images(images), first, atol=1e-6)
    np.testing.assert_allclose(again.encode_texts(texts), encoder.encode_texts(texts), atol=1e-6)


def test_empty_inputs(encoder: HFClipEncoder) -> None:
    for emb in (encoder.encode_images([]), encoder.encode_texts([])):
        assert emb.shape == (0, DIM)
        assert emb.dtype == np.float32


def test_input_validation(encoder: HFClipEncoder, images: list[Image.Image]) -> None:
    with pytest.raises(TypeError, match=r"images\[1\]"):
        encoder.encode_images([images[0], np.zeros((32, 32, 3), np.uint8)])
    with pytest.raises(TypeError, match=r"texts\[2\]"):
        encoder.encode_texts(["a cat", "a dog", 3])
    with pytest.raises(TypeError, match="single string"):
        encoder.encode_texts("a cat")
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode_texts(["a cat"], batch_size=0)


def test_id_tracks_the_weights(
    encoder: HFClipEncoder, model_dirs: dict[str, Path], tmp_path: Path, images: list[Image.Image]
) -> None:
    other = create_encoder("hf:" + str(model_dirs["b"]), device="cpu")
    assert other.id != encoder.id
    assert other.id.rsplit("@", 1)[1] != encoder.id.rsplit("@", 1)[1]
    assert not np.allclose(other.encode_images(images), encoder.encode_images(images))

    # A copy of the same files has the same fingerprint ...
    copy = tmp_path / "copy"
    shutil.copytree(model_dirs["a"], copy)
    fingerprint = encoder.id.rsplit("@", 1)[1]
    assert HFClipEncoder(str(copy), device="cpu").id == f"hf:{copy.resolve()}@{fingerprint}"
    # ... and overwriting its weights in place changes it (the fingerprint cache notices).
    time.sleep(0.01)
    shutil.copyfile(model_dirs["b"] / "model.safetensors", copy / "model.safetensors")
    changed = HFClipEncoder(str(copy), device="cpu")
    assert changed.id.rsplit("@", 1)[1] not in (fingerprint, "")
    assert changed.id.rsplit("@", 1)[1] != other.id.rsplit("@", 1)[1]  # config.json differs too


def test_trainable_parameters(encoder: HFClipEncoder, images: list[Image.Image]) -> None:
    model = encoder.model
    ids = {
        scope: {id(p) for p in encoder.trainable_parameters(scope)}
        for scope in ("projections", "last-blocks", "all")
    }
    assert ids["projections"] == {
        id(model.visual_projection.weight),
        id(model.text_projection.weight),
    }
    assert ids["projections"] < ids["last-blocks"] < ids["all"]
    assert ids["all"] == {id(p) for p in model.parameters()}
    last_text = {id(p) for p in model.text_model.encoder.layers[-1].parameters()}
    first_vision = {id(p) for p in model.vision_model.encoder.layers[0].parameters()}
    assert last_text <= ids["last-blocks"]
    assert not first_vision & ids["last-blocks"]
    with pytest.raises(ValueError, match="unknown scope"):
        encoder.trainable_parameters("lora")

    # The hooks are usable for a gradient step (outside encode_*, which runs in inference mode).
    params = encoder.trainable_parameters("last-blocks")
    visual = model.visual_projection.weight
    pixels = encoder.image_processor(images=images[:2], return_tensors="pt")["pixel_values"]
    loss = encoder.image_features(pixels).pow(2).sum()
    loss.backward()
    vision = {id(p) for p in model.vision_model.parameters()}
    assert all(p.grad is not None for p in params if id(p) in vision or p is visual)
    model.zero_grad(set_to_none=True)

    # Encoding from a model left in train mode runs in eval mode and restores the flag.
    before = encoder.encode_images(images[:2])
    model.train()
    try:
        np.testing.assert_array_equal(encoder.encode_images(images[:2]), before)
        assert model.training
    finally:
        model.eval()


def test_hub_model_from_cache_uses_commit_hash(
    model_dirs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    offline: None,
    encoder: HFClipEncoder,
    texts: list[str],
) -> None:
    """A hub id resolves offline from a hub cache; the id carries the resolved commit."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--modalchorus--tiny-clip"
    shutil.copytree(model_dirs["a"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)  # so "modalchorus/tiny-clip" is not a local directory

    hub = create_encoder("hf:modalchorus/tiny-clip", device="cpu")
    assert hub.id == f"hf:modalchorus/tiny-clip@{commit}"
    np.testing.assert_allclose(hub.encode_texts(texts), encoder.encode_texts(texts), atol=1e-6)
    pinned = HFClipEncoder("modalchorus/tiny-clip", device="cpu", revision=commit)
    assert pinned.id == hub.id


def test_missing_model_errors(tmp_path: Path, offline: None) -> None:
    with pytest.raises(UnknownEncoderError, match="needs a model"):
        create_encoder("hf:")
    with pytest.raises(ValueError, match="needs a model"):
        HFClipEncoder("  ")
    missing = tmp_path / "does-not-exist"
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        create_encoder("hf:" + str(missing), device="cpu")
    with pytest.raises(ValueError, match="is a file"):
        (tmp_path / "weights.txt").write_text("x")
        HFClipEncoder(str(tmp_path / "weights.txt"), device="cpu")

    start = time.monotonic()
    with pytest.raises(OSError, match="no-such-org/no-such-model"):
        create_encoder("hf:no-such-org/no-such-model", device="cpu")
    with pytest.raises(OSError, match="not a repo id"):
        create_encoder("hf:not a repo id", device="cpu")
    assert time.monotonic() - start < 10


def test_refuses_non_safetensors_and_non_clip(tmp_path: Path) -> None:
    from transformers import BertConfig

    empty = tmp_path / "pickle_only"
    empty.mkdir()
    (empty / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(FileNotFoundError, match="safetensors"):
        HFClipEncoder(str(empty), device="cpu")

    bert = tmp_path / "bert"
    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2).save_pretrained(bert)
    (bert / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="'bert' model"):
        HFClipEncoder(str(bert), device="cpu")
