"""Alignment on a real workspace: intents, tuning scopes, same-frame layouts, undo/redo, export.

The workspace holds 80 real CIFAR-10 test images and the class prompts, embedded with the
real ``pocket`` encoder, and an MFM layout fitted on them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from modalchorus.align import (
    IntentError,
    PointSet,
    SetSet,
    active_version,
    export_run,
    intent_from_dict,
    intent_to_dict,
    redo_alignment,
    run_alignment,
    undo_alignment,
    version_encoder,
)
from modalchorus.align.adapters import ModalityAdapters
from modalchorus.data import load_dataset
from modalchorus.embedding import embed_dataset
from modalchorus.encoders import create_encoder
from modalchorus.evaluation import workspace_task_metrics
from modalchorus.projecting import project_dataset, projection_name, resolve_encoder_id
from modalchorus.store import UnknownEncoderError, UnknownSetError, Workspace
from modalchorus.tasks.classification import class_embeddings, with_class_prompts

HELPERS = Path(__file__).parent / "helpers"
N_IMAGES = 80


@pytest.fixture(scope="module")
def built(tmp_path_factory, data_dir, pocket) -> dict:
    """A workspace with embeddings and an MFM layout; copied per test (tests write to it)."""
    path = tmp_path_factory.mktemp("align") / "ws"
    ws = Workspace.create(path)
    dataset = with_class_prompts(load_dataset("cifar10", data_dir=data_dir, limit=N_IMAGES))
    ws.add_dataset(dataset)
    embed_dataset(ws, dataset, pocket)
    project_dataset(ws, "cifar10", pocket.id, "mfm", ks=(5,), params={"max_iter": 150})
    ws.close()
    return {"path": path, "encoder_id": pocket.id}


@pytest.fixture()
def ws(built, tmp_path) -> Workspace:
    import shutil

    copy = tmp_path / "ws"
    shutil.copytree(built["path"], copy)
    with Workspace.open(copy) as workspace:
        yield workspace


def prompt_set(ws: Workspace, label: str) -> int:
    items = ws.items(dataset="cifar10")
    ids = items[(items["kind"] == "text") & (items["label"] == label)]["id"].tolist()
    return ws.create_set(f"{label} prompts", ids).id


def misclassified(ws: Workspace, encoder_id: str) -> list[tuple[str, str, str]]:
    """(image id, true class, predicted class) of the images zero-shot gets wrong."""
    items = ws.items(dataset="cifar10", kind="image")
    report = workspace_task_metrics(ws, encoder_id, "cifar10")
    classes = ws.dataset("cifar10").classes
    confusion = np.array(report["confusion"])
    assert confusion.sum() == len(items)
    _, vectors = ws.get_embeddings(encoder_id, items["id"].tolist())
    texts = ws.items(dataset="cifar10", kind="text")
    _, prompts = ws.get_embeddings(encoder_id, texts["id"].tolist())
    labels = texts["label"].to_numpy()
    centroids = class_embeddings(
        np.concatenate([prompts[labels == c] for c in classes]), len(classes)
    )
    predicted = np.array(classes)[np.argmax(vectors @ centroids.T, axis=1)]
    wrong = predicted != items["label"].to_numpy()
    return list(zip(items["id"][wrong], items["label"][wrong], predicted[wrong], strict=True))


def test_adapter_is_centred_identity_at_start_and_round_trips() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(6, 8, generator=gen), dim=1)
    is_image = torch.tensor([True, False] * 3)
    centres = {"image": x[is_image].mean(0), "text": x[~is_image].mean(0)}
    adapters = ModalityAdapters(8, None, centres)
    torch.testing.assert_close(adapters(x, is_image), x)
    with torch.no_grad():
        adapters.image.linear[0].weight.copy_(torch.randn(8, 8, generator=gen))
    out = adapters(x, is_image)
    # W reads x - c: the image centre itself is left where it was.
    torch.testing.assert_close(
        adapters.adapt(centres["image"][None], "image"),
        torch.nn.functional.normalize(centres["image"][None], dim=1),
    )
    state = adapters.state_dict()
    torch.testing.assert_close(ModalityAdapters.from_state(state)(x, is_image), out)
    # A state saved before adapters had centres loads with zero centres.
    old = {k: v for k, v in state.items() if not k.endswith("centre")}
    loaded = ModalityAdapters.from_state(old)
    assert torch.count_nonzero(loaded.image.centre) == 0
    torch.testing.assert_close(
        loaded(x, is_image)[is_image],
        torch.nn.functional.normalize(x + x @ adapters.image.linear[0].weight.T, dim=1)[is_image],
    )


def test_intent_json_round_trip_and_errors() -> None:
    spec = {"type": "point-set", "point": "a", "target": ["b", "c"], "avoid": 3, "strength": 2}
    intent = intent_from_dict(spec)
    assert intent == PointSet("a", ("b", "c"), 3, 2.0)
    assert intent_to_dict(intent) == {**spec, "strength": 2.0}
    assert intent_from_dict(intent_to_dict(SetSet("x", "y", "separate"))) == SetSet(
        "x", "y", "separate"
    )
    bad = [
        ([1], "JSON object"),
        ({"type": "nope"}, "point-set' or 'set-set"),
        ({"type": "set-set", "a": "x"}, "missing b"),
        ({"type": "set-set", "a": "x", "b": "y", "colour": 1}, "unknown keys colour"),
        ({"type": "set-set", "a": "x", "b": "y", "mode": "merge"}, "mode"),
        ({"type": "set-set", "a": "x", "b": "y", "strength": 0}, "strength"),
        ({"type": "set-set", "a": "x", "b": "y", "strength": float("nan")}, "strength"),
        ({"type": "point-set", "point": "p", "target": []}, "empty list"),
        ({"type": "point-set", "point": "", "target": "s"}, "point"),
    ]
    for spec, message in bad:
        with pytest.raises(IntentError, match=message):
            intent_from_dict(spec)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"steps": "fast"}, "steps must be 'auto' or an integer in [1, 1,000,000], got 'fast'"),
        ({"steps": 10**9}, "steps must be"),
        ({"steps": 2.5}, "got 2.5"),
        ({"learning_rate": 0}, "learning_rate must be 'auto' or a finite number > 0 and <= 1"),
        ({"temperature": float("inf")}, "temperature must be a finite number > 0"),
        ({"negative_sample": True}, "negative_sample must be an integer >= 1, got True"),
        ({"separate_margin": 2}, "separate_margin must be a finite number >= -1 and <= 1"),
        ({"lora_rank": 0}, "lora_rank must be an integer in [1, 4,096]"),
        ({"lora_alpha": -1}, "lora_alpha must be a finite number > 0"),
        ({"weight_decay": -0.1}, "weight_decay must be a finite number >= 0"),
        ({"adapter_rank": 0}, "adapter_rank must be null or an integer in [1, 4,096], got 0"),
        ({"random_state": "x"}, "random_state must be an integer >= 0"),
        ({"hold_anchors": 1}, "hold_anchors must be true or false, got 1"),
        ({"free_contested": None}, "free_contested must be true or false"),
    ],
)
def test_tuner_parameters_are_checked_by_name(params, message) -> None:
    from modalchorus.align.tuner import AlignmentTuner

    with pytest.raises(ValueError, match=re.escape(message)):
        AlignmentTuner(**params).validate()


def test_tuner_defaults_validate_and_resolve_auto() -> None:
    from modalchorus.align.tuner import SCOPE_DEFAULTS, AlignmentTuner

    tuner = AlignmentTuner("lora", adapter_rank=16).validate()
    assert tuner.steps_ == SCOPE_DEFAULTS["lora"]["steps"]
    assert tuner.learning_rate_ == SCOPE_DEFAULTS["lora"]["learning_rate"]


def test_bad_intents_fail_clearly_and_change_nothing(ws: Workspace, built) -> None:
    encoder_id = built["encoder_id"]
    cats = prompt_set(ws, "cat")
    image = ws.items(dataset="cifar10", kind="image")["id"].iloc[0]
    cat_ids = ws.get_set(cats).item_ids
    before = (ws.embedded_encoders(), ws.projections())
    cases = [
        ([], IntentError, "no intents"),
        ([PointSet("cifar10/nope", cats)], IntentError, "unknown item id"),
        ([PointSet(image, ["cifar10/nope"])], IntentError, "unknown or without an embedding"),
        ([PointSet(image, "no such set")], UnknownSetError, "no such set"),
        ([PointSet(image, 999)], UnknownSetError, "999"),
        ([PointSet(image, cats, avoid=cat_ids[:2])], IntentError, "both target and avoid"),
        ([PointSet(image, cats, avoid=[image])], IntentError, "in its avoid set"),
        ([SetSet(cats, cat_ids)], IntentError, "same items"),
    ]
    for intents, error, message in cases:
        with pytest.raises(error, match=message):
            run_alignment(ws, intents, encoder_id=encoder_id)
    for params, message in (
        ({"preserve_sample": -1}, "preserve_sample"),
        ({"steps": 0}, "steps"),
        ({"preserve_weight": -1.0}, "preserve_weight"),
        ({"preserve_weight": float("nan")}, "preserve_weight"),
        ({"negative_sample": 0}, "negative_sample"),
    ):
        with pytest.raises(ValueError, match=message):
            run_alignment(ws, [PointSet(image, cats)], encoder_id=encoder_id, params=params)
    assert (ws.embedded_encoders(), ws.projections()) == before
    assert ws.alignment_runs() == []


def test_bad_run_requests_are_refused_before_any_write(ws: Workspace, built) -> None:
    """Every refusal names the problem, and the workspace's last commit is unchanged."""
    base = built["encoder_id"]
    cats = prompt_set(ws, "cat")
    images = ws.items(dataset="cifar10", kind="image")["id"].tolist()
    good = [PointSet(images[0], cats)]
    ws.remove_items([images[1]])
    seq = ws.summary()["last_commit"]["seq"]
    cases = [
        ({"encoder_id": "no-such-encoder"}, UnknownEncoderError, "no-such-encoder"),
        ({"encoder_id": f"{base}~adapter@000000000000"}, UnknownEncoderError, "000000000000"),
        ({"intents": [PointSet(images[0], "no such set")]}, UnknownSetError, "no such set"),
        # An item removed since: as the point, or a member of a listed set.
        ({"intents": [PointSet(images[1], cats)]}, IntentError, "unknown item id"),
        ({"intents": [PointSet(images[0], [images[1], images[2]])]}, IntentError, "unknown"),
        # A single intent, not a list: a TypeError ("object of type 'PointSet' has no len()").
        ({"intents": good[0]}, IntentError, "intents must be a list of PointSet / SetSet"),
        ({"scope": "everything"}, ValueError, "unknown scope 'everything'"),
        ({"scope": "lora"}, ValueError, "pass encoder, images and texts"),
        # TypeErrors ("got multiple values for argument 'scope'", "unexpected keyword ...").
        ({"params": {"scope": "lora"}}, ValueError, "'scope' \\(an argument of run_alignment"),
        ({"params": {"progress": print}}, ValueError, "'progress' \\(an argument of run_alignment"),
        ({"params": {"stepz": 3}}, ValueError, "unknown tuner parameter 'stepz'; use any of steps"),
        ({"params": [("steps", 3)]}, ValueError, "params must be a dict"),
        ({"params": {"temperature": 1e-9}}, ValueError, "temperature must be at least"),
    ]
    for change, error, message in cases:
        request = {"intents": good, "encoder_id": base, **change}
        with pytest.raises(error, match=message):
            run_alignment(ws, **request)
        assert ws.summary()["last_commit"]["seq"] == seq, change
    assert ws.alignment_runs() == []


def test_adapter_run_fixes_targets_preserves_the_rest_and_keeps_the_frame(
    ws: Workspace, built
) -> None:
    base = built["encoder_id"]
    wrong = misclassified(ws, base)[:12]
    assert len(wrong) >= 8
    sets = {c: prompt_set(ws, c) for c in ws.dataset("cifar10").classes}
    intents = [PointSet(i, sets[true], avoid=sets[pred]) for i, true, pred in wrong]
    progress: list[float] = []
    run = run_alignment(ws, intents, encoder_id=base, progress=lambda f, m: progress.append(f))

    assert run.active and run.parent_encoder_id == base and run.scope == "adapter"
    assert active_version(ws, base) == run.encoder_id != base
    assert resolve_encoder_id(ws, "pocket") == run.encoder_id
    # The last report comes before the commit (a cancel there writes nothing).
    assert progress[-1] == 0.97 and progress == sorted(progress)
    # The intents' images now land in their true class.
    still_wrong = {i for i, _, _ in misclassified(ws, run.encoder_id)}
    fixed = [i for i, _, _ in wrong if i not in still_wrong]
    assert len(fixed) >= 0.75 * len(wrong)
    # Everything else barely moved.
    named = {i for i, _, _ in wrong} | {t for s in sets.values() for t in ws.get_set(s).item_ids}
    ids, old = ws.get_embeddings(base)
    _, new = ws.get_embeddings(run.encoder_id, ids)
    others = np.array([i not in named for i in ids])
    cos = (old * new).sum(1)
    assert np.median(cos[others]) > 0.97
    assert cos[~others].mean() < cos[others].mean()
    # The points move toward their target sets; the sets' members stay where they were.
    points = np.isin(ids, [i for i, _, _ in wrong])
    anchors = ~others & ~points
    assert np.median(cos[anchors]) > 0.97 and cos[anchors].mean() > cos[points].mean()
    # Same 2-D frame: the new layout comes from the stored MFM's transform.
    parent_name = projection_name("mfm", "cifar10", base)
    layout = ws.projection_info(projection_name("mfm", "cifar10", run.encoder_id))
    assert layout.params["frame_of"] == parent_name
    assert ws.projection_model_files(layout.name) == ws.projection_model_files(parent_name)
    _, old_xy = ws.get_projection(parent_name)
    _, new_xy = ws.get_projection(layout.name)
    shift = np.linalg.norm(new_xy - old_xy, axis=1)
    assert np.median(shift) < 0.1 * np.ptp(old_xy, axis=0).max()
    assert run.moved and run.moved[0]["distance"] == pytest.approx(shift.max(), rel=1e-4)
    # Metrics before/after recorded; accuracy went up.
    before, after = run.metrics_before["cifar10"], run.metrics_after["cifar10"]
    assert before == workspace_task_metrics(ws, base, "cifar10")
    assert after["accuracy"] > before["accuracy"]
    assert ws.alignment_run(run.id).intents[0]["target"] == ws.get_set(sets[wrong[0][1]]).item_ids


def test_a_point_moves_to_its_target_set_and_the_set_stays(ws: Workspace, built) -> None:
    base = built["encoder_id"]
    cats = prompt_set(ws, "cat")
    images = ws.items(dataset="cifar10", kind="image")
    image = images[images["label"] != "cat"]["id"].iloc[0]
    run = run_alignment(ws, [PointSet(image, cats, strength=2.0)], encoder_id=base)
    ids, old = ws.get_embeddings(base)
    _, new = ws.get_embeddings(run.encoder_id, ids)
    drift = 1.0 - (old * new).sum(1)
    anchors = np.isin(ids, ws.get_set(cats).item_ids)
    # The set is held by a preservation mean of its own: a few anchors among the many
    # preserved rows must not be free to move onto the point.
    assert drift[ids.index(image)] > 0.3
    assert drift[anchors].max() < 0.02


def test_undo_redo_and_branching(ws: Workspace, built) -> None:
    base = built["encoder_id"]
    cats, dogs = prompt_set(ws, "cat"), prompt_set(ws, "dog")
    images = ws.items(dataset="cifar10", kind="image")["id"].tolist()
    first = run_alignment(ws, [PointSet(images[0], cats, dogs)], encoder_id=base)
    second = run_alignment(ws, [PointSet(images[1], dogs, cats)], encoder_id=base)
    assert second.parent_encoder_id == first.encoder_id
    assert active_version(ws, base) == second.encoder_id

    assert undo_alignment(ws, base).id == second.id
    assert active_version(ws, base) == first.encoder_id
    assert undo_alignment(ws, second.encoder_id).id == first.id
    assert active_version(ws, base) == base
    seq = ws.summary()["last_commit"]["seq"]
    assert undo_alignment(ws, base) is None
    assert ws.summary()["last_commit"]["seq"] == seq  # nothing to undo: no commit logged
    assert redo_alignment(ws, base).id == first.id
    assert active_version(ws, base) == first.encoder_id
    # A new run from here branches; redo then has nothing newer to go to.
    third = run_alignment(ws, [SetSet(cats, dogs, "separate")], encoder_id=base)
    assert third.parent_run_id == first.id
    seq = ws.summary()["last_commit"]["seq"]
    assert redo_alignment(ws, base) is None
    assert ws.summary()["last_commit"]["seq"] == seq
    assert [r.active for r in ws.alignment_runs(base)] == [False, False, True]


def test_a_cancel_while_placing_or_scoring_writes_nothing(ws: Workspace, built) -> None:
    """Placing the new version and scoring it report progress per layout and per dataset and
    version: a cancel (an exception from ``progress``) there stops the run, writing nothing."""
    base = built["encoder_id"]
    cats, dogs = prompt_set(ws, "cat"), prompt_set(ws, "dog")
    image = ws.items(dataset="cifar10", kind="image")["id"].iloc[0]
    seq = ws.summary()["last_commit"]["seq"]

    class Cancelled(Exception):
        pass

    for point in ("placing the new embeddings with", "task metrics of"):
        messages: list[str] = []

        def progress(fraction: float, message: str, point=point, messages=messages) -> None:
            messages.append(message)
            if message.startswith(point):
                raise Cancelled

        with pytest.raises(Cancelled):
            run_alignment(ws, [PointSet(image, cats, dogs)], encoder_id=base, progress=progress)
        assert ws.summary()["last_commit"]["seq"] == seq and ws.alignment_runs(base) == []
        assert messages[-1].startswith(point)


def test_export_loads_back_through_the_registry(ws: Workspace, built, tmp_path, data_dir) -> None:
    base = built["encoder_id"]
    cats = prompt_set(ws, "cat")
    images = ws.items(dataset="cifar10", kind="image")
    run = run_alignment(ws, [PointSet(images["id"].iloc[0], cats)], encoder_id=base)
    folder = export_run(ws, run.id, tmp_path / "export")
    assert sorted(p.name for p in folder.iterdir()) == ["alignment.json", "alignment.safetensors"]
    aligned = create_encoder(f"aligned:{folder}", device="cpu")
    assert aligned.id == run.encoder_id
    texts = ws.items(dataset="cifar10", kind="text")[:5]
    _, stored = ws.get_embeddings(run.encoder_id, texts["id"].tolist())
    np.testing.assert_allclose(aligned.encode_texts(texts["text"].tolist()), stored, atol=1e-5)
    dataset = load_dataset("cifar10", data_dir=data_dir, limit=3)
    _, stored = ws.get_embeddings(run.encoder_id, images["id"][:3].tolist())
    encoded = aligned.encode_images([r.load() for r in dataset.images])
    np.testing.assert_allclose(encoded, stored, atol=1e-4)
    with pytest.raises(FileNotFoundError, match="no alignment.json"):
        create_encoder(f"aligned:{tmp_path}")
    # Edited weights would load as the recorded version, embedding differently under its id.
    edited = export_run(ws, run.id, tmp_path / "edited") / "alignment.safetensors"
    tensors = {k: v * 1.5 for k, v in load_tensors(edited.read_bytes()).items()}
    edited.write_bytes(save_tensors(tensors))
    with pytest.raises(ValueError, match="edited or damaged"):
        create_encoder(f"aligned:{edited.parent}")
    # A second export to the same folder replaces nothing unless asked to.
    with pytest.raises(FileExistsError, match="already holds alignment.json and alignment.s"):
        export_run(ws, run.id, edited.parent)
    assert edited.read_bytes() == save_tensors(tensors)
    assert export_run(ws, run.id, edited.parent, overwrite=True) == edited.parent
    assert create_encoder(f"aligned:{edited.parent}").id == run.encoder_id
    (folder / "alignment.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="alignment.safetensors is not a valid safetensors file"):
        create_encoder(f"aligned:{folder}")


def test_version_encoder_names_an_unknown_version(ws: Workspace, built, pocket) -> None:
    base = built["encoder_id"]
    assert version_encoder(ws, base, pocket) is pocket
    run = run_alignment(ws, [SetSet(prompt_set(ws, "cat"), prompt_set(ws, "dog"))], encoder_id=base)
    aligned = version_encoder(ws, run.encoder_id, pocket)
    assert aligned.id == run.encoder_id
    for version in ("nope", f"{base}+aligned-99-0123456789ab"):
        with pytest.raises(
            UnknownEncoderError, match=f"unknown embedding version '{re.escape(version)}'"
        ):
            version_encoder(ws, version, pocket)
    with pytest.raises(ValueError, match="is a version of encoder 'pocket@.*', not of 'other'"):
        version_encoder(ws, run.encoder_id, SimpleNamespace(id="other"))


def test_lora_run_tunes_the_towers_and_exports(ws: Workspace, built, pocket, tmp_path) -> None:
    base = built["encoder_id"]
    wrong = misclassified(ws, base)[:6]
    sets = {c: prompt_set(ws, c) for c in {t for _, t, _ in wrong} | {p for _, _, p in wrong}}
    intents = [PointSet(i, sets[t], avoid=sets[p]) for i, t, p in wrong]
    reports: list[tuple[float, str]] = []
    run = run_alignment(
        ws,
        intents,
        encoder_id=base,
        scope="lora",
        encoder=pocket,
        params={"steps": 8},
        progress=lambda f, m: reports.append((f, m)),
    )
    assert run.scope == "lora" and "~lora@" in run.encoder_id
    # Every phase reports, in order: loading, preparing, tuning, re-embedding, storing.
    phases = ["loading images", "preparing images", "tuning step", "re-embedding", "storing"]
    firsts = [next(i for i, (_, m) in enumerate(reports) if m.startswith(p)) for p in phases]
    assert firsts == sorted(firsts)
    assert [f for f, _ in reports] == sorted(f for f, _ in reports)
    ids, old = ws.get_embeddings(base)
    _, new = ws.get_embeddings(run.encoder_id, ids)
    assert not np.allclose(old, new)  # the towers changed
    assert np.abs(np.linalg.norm(new, axis=1) - 1).max() < 1e-5
    aligned = create_encoder(f"aligned:{export_run(ws, run.id, tmp_path / 'lora')}")
    texts = ws.items(dataset="cifar10", kind="text")[:4]
    _, stored = ws.get_embeddings(run.encoder_id, texts["id"].tolist())
    np.testing.assert_allclose(aligned.encode_texts(texts["text"].tolist()), stored, atol=1e-5)
    # The server's shared encoder was copied, never changed.
    np.testing.assert_allclose(
        pocket.encode_texts(texts["text"].tolist()),
        ws.get_embeddings(base, texts["id"].tolist())[1],
        atol=1e-5,
    )


def test_killed_run_leaves_the_previous_version(ws: Workspace, built) -> None:
    """SIGKILL right before the run's commit point: the workspace is as it was."""
    cats, dogs = prompt_set(ws, "cat"), prompt_set(ws, "dog")
    image = ws.items(dataset="cifar10", kind="image")["id"].iloc[0]
    intents = Path(ws.path).parent / "intents.json"
    intents.write_text(
        json.dumps([{"type": "point-set", "point": image, "target": cats, "avoid": dogs}])
    )
    before = (ws.embedded_encoders(), ws.projections(), ws.alignment_runs())
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HELPERS / "crash_writer.py"),
            str(ws.path),
            "hook-align",
            str(intents),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert lines[0] == "STARTED\n" and lines[1].startswith("LANCE_WRITTEN"), lines
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with Workspace.open(ws.path) as reopened:
        assert (
            reopened.embedded_encoders(),
            reopened.projections(),
            reopened.alignment_runs(),
        ) == before
        assert active_version(reopened, built["encoder_id"]) == built["encoder_id"]
        run = run_alignment(reopened, [PointSet(image, cats, dogs)], encoder_id=built["encoder_id"])
        assert run.id == 1 and run.active


def test_cli_align_json_and_errors(ws: Workspace, built, tmp_path) -> None:
    for label in ("cat", "dog"):  # the intents name these sets
        prompt_set(ws, label)
    image = ws.items(dataset="cifar10", kind="image")["id"].iloc[0]
    path = ws.path
    ws.close()
    intents = tmp_path / "intents.json"
    intents.write_text(
        json.dumps(
            {
                "intents": [
                    {
                        "type": "point-set",
                        "point": image,
                        "target": "cat prompts",
                        "avoid": "dog prompts",
                    }
                ]
            }
        )
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "modalchorus.cli", *args], capture_output=True, text=True
        )

    done = cli(
        "align", str(path), "--intents", str(intents), "--json", "--export", str(tmp_path / "x")
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["run"]["metrics_before"]["cifar10"]["accuracy"] >= 0
    assert "accuracy" in data["run"]["metrics_after"]["cifar10"]
    assert (tmp_path / "x" / "alignment.safetensors").is_file()
    undo = cli("align", str(path), "--undo", "--json")
    assert json.loads(undo.stdout)["active_version"] == built["encoder_id"]

    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            [{"type": "point-set", "point": image, "target": "cat prompts", "avoid": "cat prompts"}]
        )
    )
    failed = cli("align", str(path), "--intents", str(bad))
    assert failed.returncode == 2 and "both target and avoid" in failed.stderr
    bad.write_text("{not json")
    failed = cli("align", str(path), "--intents", str(bad))
    assert failed.returncode == 2 and "not valid JSON" in failed.stderr
    with Workspace.open(path) as reopened:
        assert len(reopened.alignment_runs()) == 1


def test_a_point_joining_concepts_must_beat_every_concept_not_only_its_avoid_set() -> None:
    """Target "t" prompts, avoid "a" prompts; the point starts nearest to a third concept "c".

    Beating the avoid set alone would leave it classified as "c"; joining the target means
    beating every concept, as zero-shot classification does.
    """
    from modalchorus.align.state import AlignmentState
    from modalchorus.align.tuner import AlignmentTuner, IndexedIntent

    rng = np.random.default_rng(0)
    dim, per_concept, n_images = 32, 3, 300
    axes = np.eye(dim, dtype=np.float32)
    prompts = np.concatenate(
        [axes[c] + 0.05 * rng.standard_normal((per_concept, dim)) for c in range(3)]
    )
    images = rng.standard_normal((n_images, dim)).astype(np.float32)
    # The point: nearest "c", and far from its avoid set "a" already.
    images[0] = 0.6 * axes[0] - 0.5 * axes[1] + 0.7 * axes[2]
    reference = np.concatenate([images, prompts]).astype(np.float32)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    is_image = np.arange(len(reference)) < n_images
    concept_rows = np.arange(n_images, len(reference))
    rows_of = {c: concept_rows[c * per_concept : (c + 1) * per_concept] for c in range(3)}
    intent = IndexedIntent("point-set", 1.0, point=0, target=rows_of[0], avoid=rows_of[1])

    def concept_cosines(embeddings: np.ndarray) -> np.ndarray:
        centroids = class_embeddings(embeddings[concept_rows], 3)
        return centroids @ embeddings[0]

    before = concept_cosines(reference)
    assert before.argmax() == 2 and before[0] > before[1] + 1.0
    tuner = AlignmentTuner(random_state=0).fit(
        reference, is_image, [intent], AlignmentState("toy", None, dim), concepts=concept_rows
    )
    after = concept_cosines(tuner.embeddings_)
    # Contrasting with the avoid set alone leaves "t" and "c" about tied (measured: 0.61 /
    # 0.61); competing with every concept puts "t" clearly first (0.73 / 0.47).
    assert after[0] > after[2] + 0.1
