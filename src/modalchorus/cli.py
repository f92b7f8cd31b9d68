"""``modalchorus`` command line: a thin wrapper over the Python API."""

from __future__ import annotations

import inspect
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from modalchorus.store.errors import UnknownDatasetError, UnknownEncoderError, WorkspaceError

if TYPE_CHECKING:
    from modalchorus.data import Dataset
    from modalchorus.store import Workspace

app = typer.Typer(
    help="Probe and re-align multi-modal (image-text) embeddings.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# No markup or emoji codes: names, paths and messages are printed as they are ("a[/]b",
# "x:y"); styles are passed explicitly.
out = Console(markup=False, emoji=False)
err = Console(stderr=True, markup=False, emoji=False)

HOME = Path(os.environ.get("MODALCHORUS_HOME", Path.home() / ".cache" / "modalchorus"))
DEFAULT_DEMO_WORKSPACE = HOME / "demo-workspace"
DEFAULT_EVAL_CACHE = HOME / "eval-cache"
#: Logger of the loaders' "skipped N entries" summaries (``modalchorus.data._common``); the
#: CLI lists every skipped entry itself, so it is quiet unless --verbose. A string, as
#: importing ``modalchorus.data`` would slow down every ``--help``.
SKIPPED_LOGGER = "modalchorus.data.skipped"

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
EncoderOpt = Annotated[str, typer.Option("--encoder", "-e", help="Encoder name (see `encoders`).")]
DeviceOpt = Annotated[str, typer.Option(help="cpu, cuda or auto.")]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(help="Folder of the named datasets.", show_default="$MODALCHORUS_DATA_DIR"),
]


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected failures (bad input, missing files) into one line and exit code 2."""
    try:
        yield
    except (ValueError, OSError, KeyError, TypeError, WorkspaceError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        line = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
        err.print(Text.assemble(("error:", "bold red"), f" {line}"), soft_wrap=True)
        raise typer.Exit(code=2) from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[float, str], None]]:
    """A transient progress bar on stderr; yields ``report(fraction, message)``.

    Drawn only on a terminal, so ``--json`` output and logs stay clean.
    """
    if not err.is_terminal:
        yield lambda fraction, message: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(description, total=1.0)
        yield lambda fraction, message: bar.update(task, completed=fraction, description=message)


def emit(data: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], None]) -> None:
    """Print ``data`` as JSON or through a human renderer."""
    if as_json:
        sys.stdout.write(json.dumps(_jsonable(data), indent=2) + "\n")
    else:
        render(data)


def _confirm_or_abort(question: str) -> None:
    """Ask ``question`` on stderr and abort (exit code 1) unless the answer is yes.

    Not ``typer.confirm``: it writes the prompt's last character to stdout, which then
    no longer holds only the ``--json`` output.
    """
    while True:
        err.print(f"{question} [y/N]: ", end="", soft_wrap=True)
        line = sys.stdin.readline()
        answer = line.strip().lower()
        if answer in ("y", "yes"):
            return
        if not line:  # end of input: run from a script, say how to go on without a question
            err.print("\nno answer on standard input; pass --yes to go on without asking")
            raise typer.Exit(code=1)
        if answer in ("", "n", "no"):
            raise typer.Abort()
        err.print("Error: invalid input")


def _print_version(value: bool) -> None:
    if value:
        from modalchorus import __version__

        out.print(f"modalchorus {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log progress details (INFO level) to stderr.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Probe and re-align multi-modal (image-text) embeddings."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    if not verbose:  # `embed` lists every skipped entry with its reason itself
        logging.getLogger(SKIPPED_LOGGER).setLevel(logging.ERROR)


@app.command("encoders")
def encoders_cmd(as_json: JsonFlag = False) -> None:
    """List the available encoder families."""
    from modalchorus.encoders import list_encoders

    data = list_encoders()

    def render(d: dict[str, Any]) -> None:
        table = Table("encoder", "description")
        for name, desc in d.items():
            table.add_row(name, desc)
        out.print(table)

    emit(data, as_json, render)


#: Quality figures ``info`` lists per stored projection (see ``modalchorus project``).
_QUALITY_KEYS = ("inter_T@10", "inter_C@10", "fit_seconds")


def _render_summary(summary: dict[str, Any]) -> None:
    out.print(Text.assemble(("workspace", "bold"), f" {summary['path']}"))
    table = Table("dataset", "images", "texts", "skipped")
    for name, counts in summary["datasets"].items():
        table.add_row(name, str(counts["image"]), str(counts["text"]), str(counts["skipped"]))
    out.print(table)
    for encoder_id, e in summary["encoders"].items():
        out.print(f"embeddings: {encoder_id} ({e['items']} items, d={e['dim']})")
    stored = summary.get("stored_projections", [])
    for encoder_id in dict.fromkeys(p["encoder"] for p in stored):
        title = f"projections of {encoder_id}"
        table = Table("method", "dataset", title=title, title_justify="left")
        for heading in ("items", "inter T@10", "inter C@10", "fit s"):
            table.add_column(heading, justify="right")
        for p in (p for p in stored if p["encoder"] == encoder_id):
            figures = ("-" if p[k] is None else f"{p[k]:.3f}" for k in _QUALITY_KEYS[:2])
            fit = "-" if p["fit_seconds"] is None else f"{p['fit_seconds']:.1f}"
            table.add_row(p["method"], p["dataset"], str(p["n_items"]), *figures, fit)
        out.print(table)


def _check_dataset_name(name: str) -> str:
    """A dataset name ``embed`` may store: item ids are ``name/...`` and the UI owns uploads."""
    from modalchorus.server.views import UPLOADS

    if not name.strip() or name != name.strip() or "/" in name:
        raise ValueError(
            f"dataset name {name!r} must be non-empty, without a '/' or surrounding spaces"
        )
    if name == UPLOADS:
        raise ValueError(
            f"dataset name {UPLOADS!r} is reserved for what the UI's Augment panel adds; "
            "pass --name with another name"
        )
    return name


def _check_same_dataset(ws: Workspace, dataset: Dataset) -> None:
    """Refuse to merge other data into a stored dataset of the same name.

    Re-embedding a dataset (grown, or under another encoder) is an upsert; a dataset with
    other classes or none of the stored images is other data under a taken name.
    """
    from modalchorus.store import UnknownDatasetError, image_item_id

    try:
        stored = ws.dataset(dataset.name)
    except UnknownDatasetError:
        return
    hint = f"pass another --name, or `modalchorus remove-dataset {ws.path} {dataset.name}`"
    classes = None if dataset.classes is None else tuple(dataset.classes)
    if classes != stored.classes:
        raise ValueError(
            f"workspace dataset {dataset.name!r} has classes {stored.classes}, this data "
            f"{classes}: {hint}"
        )
    known = set(ws.items(kind="image", dataset=dataset.name)["id"])
    ids = {image_item_id(dataset.name, r.id) for r in dataset.images}
    if known and not known & ids:
        raise ValueError(f"workspace dataset {dataset.name!r} holds none of these images: {hint}")


def _check_images_dir(source: str, images_dir: Path) -> Path:
    """``--images-dir`` as an absolute folder (stored sources work from anywhere), or raise."""
    if Path(source).suffix.lower() != ".json" or Path(source).is_dir():
        raise ValueError(
            "--images-dir applies to .json sources (COCO captions files, captions lists) only"
        )
    if not images_dir.exists():
        raise ValueError(f"--images-dir {images_dir} does not exist")
    if not images_dir.is_dir():
        raise ValueError(f"--images-dir {images_dir} is not a folder")
    return images_dir.expanduser().resolve()


def _check_embedded(ws: Workspace, dataset: str, encoder_id: str, n_items: int) -> None:
    """Refuse a dataset whose items do not all have ``encoder_id`` embeddings."""
    try:
        n_embedded = len(ws.get_embeddings(encoder_id, dataset=dataset)[0])
    except UnknownEncoderError:  # no embedding of this encoder at all
        n_embedded = 0
    if n_embedded < n_items:
        # embed stores items and vectors together, so these are items added without vectors
        # (Python API) or items a re-embedded source no longer holds (they are kept)
        raise ValueError(
            f"{n_items - n_embedded} of {n_items} items of {dataset!r} have no {encoder_id} "
            f"embedding: run `modalchorus embed` on {dataset!r} again with that encoder; "
            "items its source no longer holds get none (`remove-dataset` first drops them)"
        )


def _check_export_folder(folder: Path, force: bool) -> None:
    """Refuse an ``--export`` folder that could not be written, or that holds an earlier
    export (unless ``force``), before any work is done."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--export {folder} is a file; give a folder")
    if not force and folder.is_dir() and any(folder.iterdir()):
        raise ValueError(
            f"--export {folder} is not empty (an earlier export?); give an empty or new "
            "folder, or pass --force to replace the files an export writes there"
        )
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ValueError(f"--export {folder}: {existing} is a file, so the folder cannot be made")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--export {folder}: {existing} is not writable")


@contextmanager
def _workspace_kept_on_success(path: Path) -> Iterator[Workspace]:
    """``Workspace.open_or_create(path)``; a workspace this call creates is removed again
    when the command fails or is interrupted (Ctrl-C) before it holds a dataset, so no
    empty workspace is left behind."""
    from modalchorus.store import Workspace

    existed = path.exists()
    ws = Workspace.open_or_create(path)
    try:
        yield ws
    except BaseException:
        if not existed and not ws.datasets():
            ws.close()
            shutil.rmtree(ws.path, ignore_errors=True)
        raise


@app.command("embed")
def embed_cmd(
    source: Annotated[str, typer.Argument(help="Dataset name, image folder or manifest file.")],
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder.")],
    encoder: EncoderOpt = "pocket",
    data_dir: DataDirOpt = None,
    name: Annotated[str | None, typer.Option(help="Dataset name in the workspace.")] = None,
    image_column: Annotated[str, typer.Option(help="Manifest: image path column.")] = "image",
    caption_column: Annotated[str | None, typer.Option(help="Manifest: caption column.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Manifest: label column.")] = None,
    images_dir: Annotated[
        Path | None,
        typer.Option(
            help="JSON source (COCO captions file or captions list): folder its image file "
            "names are in.",
            show_default="the JSON file's folder",
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N images.")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    device: DeviceOpt = "auto",
    as_json: JsonFlag = False,
) -> None:
    """Embed a dataset into a workspace (created if missing); cached items are reused."""
    from modalchorus.align import active_version, version_encoder
    from modalchorus.data import MANIFEST_SUFFIXES, load_dataset
    from modalchorus.embedding import embed_dataset
    from modalchorus.encoders import create_encoder
    from modalchorus.tasks.classification import with_class_prompts

    with user_errors():
        options: dict[str, Any] = {}
        if Path(source).suffix.lower() in MANIFEST_SUFFIXES and not Path(source).is_dir():
            options = {
                "image_column": image_column,
                "caption_column": caption_column,
                "label_column": label_column,
            }
        elif caption_column or label_column or image_column != "image":
            raise ValueError(
                "--image-column, --caption-column and --label-column apply to manifests "
                f"({', '.join(sorted(MANIFEST_SUFFIXES))}) only"
            )
        if images_dir is not None:
            options["images_dir"] = _check_images_dir(source, images_dir)
        if limit is not None:
            options["limit"] = limit
        if name is not None:
            options["name"] = _check_dataset_name(name)
        enc = create_encoder(encoder, device=device)  # fail on a bad name before writing
        dataset = with_class_prompts(load_dataset(source, data_dir=data_dir, **options))
        _check_dataset_name(dataset.name)
        with _workspace_kept_on_success(workspace) as ws:
            _check_same_dataset(ws, dataset)
            with progress_bar(f"embed: {dataset.name}") as shown:
                report = embed_dataset(ws, dataset, enc, batch_size=batch_size, progress=shown)
            # After an alignment run, projections and runs use the family's active version:
            # the new items need its vectors too.
            family = ws.encoder_family(enc.id)
            active = active_version(ws, enc.id) if family == enc.id else enc.id
            if active != enc.id:
                with progress_bar(f"embed: {dataset.name} ({active})") as shown:
                    aligned = version_encoder(ws, active, enc)
                    embed_dataset(ws, dataset, aligned, batch_size=batch_size, progress=shown)
        data = {
            "workspace": str(ws.path),
            "dataset": report.dataset,
            "encoder": report.encoder,
            "active_version": active,
            "images": report.added.n_images,
            "texts": report.added.n_texts,
            "skipped": [{"id": s.id, "reason": s.reason} for s in dataset.skipped],
            "images_encoded": report.images_encoded,
            "texts_encoded": report.texts_encoded,
            "cache_hits": report.cache_hits,
            "seconds": round(report.seconds, 2),
        }

    def render(d: dict[str, Any]) -> None:
        out.print(
            f"{d['dataset']}: {d['images']} images, {d['texts']} texts -> {d['workspace']}\n"
            f"encoded {d['images_encoded']} images and {d['texts_encoded']} texts with "
            f"{d['encoder']}; {d['cache_hits']} cache hits; {d['seconds']} s"
        )
        if d["active_version"] != d["encoder"]:
            out.print(f"also embedded with the active aligned version {d['active_version']}")
        _render_skipped(d["skipped"])

    emit(data, as_json, render)


#: How many skipped entries ``embed`` lists with their reasons (``--json`` gives them all).
_SKIPS_LISTED = 10


def _render_skipped(skipped: list[dict[str, str]]) -> None:
    """List what a source held but ``embed`` left out, each with why, on stderr.

    Parameters
    ----------
    skipped : list of dict
        ``{"id": ..., "reason": ...}`` per skipped entry, in the loader's order.
    """
    if not skipped:
        return
    more = len(skipped) - _SKIPS_LISTED
    tail = f" (the first {_SKIPS_LISTED} listed; --json gives all)" if more > 0 else ""
    err.print(Text.assemble((f"skipped {len(skipped)}:", "yellow"), tail), soft_wrap=True)
    for entry in skipped[:_SKIPS_LISTED]:
        err.print(f"  {entry['id']}: {entry['reason']}", soft_wrap=True)


@app.command("info")
def info_cmd(workspace: Annotated[Path, typer.Argument()], as_json: JsonFlag = False) -> None:
    """Summarise a workspace: datasets, item counts, embeddings, stored projections."""
    from modalchorus.projecting import projection_dataset
    from modalchorus.store import Workspace

    with user_errors():
        ws = Workspace.open(workspace)
        summary = ws.summary()
        summary["stored_projections"] = [
            {
                "name": p.name,
                "method": p.method,
                "dataset": projection_dataset(p.name, p.method, p.encoder_id),
                "encoder": p.encoder_id,
                "n_items": p.n_items,
                **{key: p.metrics.get(key) for key in _QUALITY_KEYS},
            }
            for p in ws.projections()
        ]
    emit(summary, as_json, _render_summary)


@app.command("remove-dataset")
def remove_dataset_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    name: Annotated[str, typer.Argument(help="Dataset to remove (see `info`).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Remove a dataset's items from a workspace (refused while sets or intents need them).

    Embeddings stay cached, so embedding the same data again later re-encodes nothing.
    The dataset's stored projections go too, and removing `uploads` (what the UI's
    Augment panel added) deletes its image files.
    """
    from modalchorus.projecting import projection_name
    from modalchorus.server.augment import UPLOADS, upload_dir
    from modalchorus.store import Workspace

    with user_errors():
        ws = Workspace.open(workspace)
        info = _workspace_dataset(ws, name)
        if not yes:
            _confirm_or_abort(
                f"remove {name!r} ({info.n_images} images, {info.n_texts} texts) from {ws.path}?"
            )
        removed = ws.remove_dataset(name)
        # What only served the dataset goes after it: a crash in between leaves files or
        # layouts nothing reads (a layout whose items are gone is refitted, never shown).
        if name == UPLOADS:
            shutil.rmtree(upload_dir(ws), ignore_errors=True)
        layouts = [
            layout.name
            for layout in ws.projections()
            if layout.name == projection_name(layout.method, name, layout.encoder_id)
        ]
        for layout_name in layouts:
            ws.remove_projection(layout_name)
    emit(
        {
            "workspace": str(ws.path),
            "dataset": name,
            "removed_items": removed,
            "removed_projections": layouts,
        },
        as_json,
        lambda d: out.print(
            f"removed {d['dataset']!r}: {d['removed_items']} items, "
            f"{len(d['removed_projections'])} stored projections"
        ),
    )


def _render_metrics(metrics: list[dict[str, Any]]) -> None:
    for m in metrics:
        if m["task"] == "zero-shot classification":
            out.print(f"{m['dataset']}: zero-shot accuracy {m['accuracy']:.3f} on {m['n']} images")
            per_class = ", ".join(f"{c} {a:.2f}" for c, a in m["per_class_accuracy"].items())
            out.print(f"  per class: {per_class}")
        elif m["task"] == "cross-modal retrieval":
            recalls = ", ".join(f"{k} {v:.3f}" for k, v in m.items() if "R@" in k)
            out.print(f"{m['dataset']}: {recalls}")


HostOpt = Annotated[str, typer.Option(help="Address to listen on (loopback by default).")]
PortOpt = Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")]


@app.command("demo")
def demo_cmd(
    workspace: Annotated[
        Path, typer.Option("--workspace", "-w", help="Where to build the demo workspace.")
    ] = DEFAULT_DEMO_WORKSPACE,
    device: DeviceOpt = "auto",
    as_json: JsonFlag = False,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Only build and summarise; do not start the UI.")
    ] = False,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8765,
) -> None:
    """Build the built-in demo workspace (offline, first run only), summarise it, serve the UI.

    With --json (or --no-serve) it only prints the summary and exits.
    """
    from modalchorus.demo import build_demo_workspace
    from modalchorus.encoders import create_encoder
    from modalchorus.evaluation import workspace_task_metrics

    with user_errors():
        if not (as_json or no_serve):
            _check_address(host, port)  # before the build, which takes minutes the first time
        encoder = create_encoder("pocket", device=device)
        ws, reports = build_demo_workspace(workspace, encoder)
        metrics = [workspace_task_metrics(ws, encoder.id, r.dataset) for r in reports]
        data = {"summary": ws.summary(), "encoder": encoder.id, "metrics": metrics}

    def render(d: dict[str, Any]) -> None:
        _render_summary(d["summary"])
        _render_metrics(d["metrics"])

    emit(data, as_json, render)
    if as_json or no_serve:
        return
    _serve(ws.path, host, port, encoder=encoder, warm=[r.dataset for r in reports])


def _serve(
    workspace: Path, host: str, port: int, *, encoder: Any = None, warm: list[str] | None = None
) -> None:
    from modalchorus.server import serve

    def announce(url: str) -> None:
        out.print(Text.assemble(("ModalChorus UI", "bold"), f" at {url}  (Ctrl+C to stop)"))

    with user_errors():
        serve(workspace, host, port, encoder=encoder, warm=warm or (), announce=announce)


def _check_address(host: str, port: int) -> None:
    """Refuse a ``--host`` / ``--port`` this machine cannot listen on, before any long work
    (the error names the address as given)."""
    from modalchorus.server.serve import listen

    listen(host, port).close()


@app.command("serve")
def serve_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8765,
) -> None:
    """Serve the web UI and API for a workspace (http://127.0.0.1:8765 by default)."""
    from modalchorus.store import Workspace

    with user_errors():
        _check_address(host, port)
        Workspace.open(workspace)  # fail with one line before starting anything
    _serve(workspace, host, port)


@app.command("eval-encoder")
def eval_encoder_cmd(
    dataset: Annotated[str, typer.Option(help="cifar10 (zero-shot) or flickr8k (retrieval).")],
    encoder: EncoderOpt = "pocket",
    data_dir: DataDirOpt = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Use only the first N images.")] = None,
    split: Annotated[
        str, typer.Option(help="Split to evaluate on (cifar10: test or train).")
    ] = "test",
    device: DeviceOpt = "auto",
    output: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Zero-shot accuracy (cifar10) or Recall@1/5/10 both ways (flickr8k) of an encoder."""
    from modalchorus.data import load_dataset
    from modalchorus.encoders import create_encoder
    from modalchorus.evaluation import evaluate_retrieval, evaluate_zero_shot

    with user_errors():
        if dataset not in ("cifar10", "flickr8k"):
            raise ValueError(f"unknown evaluation dataset {dataset!r}; use cifar10 or flickr8k")
        if output is not None:
            _check_output_folder(output, "--output")
        enc = create_encoder(encoder, device=device)
        options: dict[str, Any] = {"split": split} if dataset == "cifar10" else {}
        if dataset == "cifar10" and limit:
            options["limit"] = limit
        ds = load_dataset(dataset, data_dir=data_dir, **options)
        with progress_bar(f"eval-encoder: {dataset}") as report:
            if dataset == "cifar10":
                result = evaluate_zero_shot(enc, ds, progress=report)
            else:
                if limit:
                    ds.images = [r for r in ds.images if r.split == split][:limit]
                result = evaluate_retrieval(enc, ds, split, progress=report)
        if output:
            output.write_text(json.dumps(_jsonable(result), indent=2) + "\n")
    emit(result, as_json, lambda d: _render_metrics([d]))


def _check_output_folder(path: Path, flag: str) -> None:
    """Fail before any work when ``path`` could not be written: its folder is missing."""
    if not path.parent.is_dir():
        raise ValueError(f"{flag} {path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise ValueError(f"{flag} {path} is a folder; give a file name")


KsOpt = Annotated[str, typer.Option("--k", help="Neighbourhood sizes, comma-separated.")]


def _parse_ints(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ValueError(f"{what} must be positive integers, got {text!r}")
    return values


def _check_method(method: str) -> None:
    """Refuse an unknown ``--method`` before any work."""
    from modalchorus.projecting import METHODS

    if method not in METHODS:
        raise ValueError(f"unknown --method {method!r}; use one of {', '.join(METHODS)}")


def _workspace_dataset(ws: Workspace, name: str) -> Any:
    """``ws.dataset(name)``; an unknown name fails listing the workspace's datasets."""
    try:
        return ws.dataset(name)
    except UnknownDatasetError:
        known = ", ".join(repr(d.name) for d in ws.datasets()) or "none"
        raise ValueError(
            f"workspace has no dataset {name!r}; its datasets: {known} (see `modalchorus info`)"
        ) from None


def _scored_ks(
    ks: tuple[int, ...], n_images: int, n_texts: int
) -> tuple[tuple[int, ...], str | None]:
    """:func:`~modalchorus.projecting.usable_ks`, with the note saying which k is scored
    when none of ``ks`` can be (``project_dataset`` then scores k = 1)."""
    from modalchorus.projecting import usable_ks

    usable, note = usable_ks(ks, n_images, n_texts)
    if not usable:
        note = f"{note}; scored at k = 1 instead"
    return usable, note


@app.command("project")
def project_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    dataset: Annotated[
        str | None, typer.Option(help="Dataset in the workspace.", show_default="every dataset")
    ] = None,
    encoder: Annotated[
        str | None, typer.Option("--encoder", "-e", help="Stored encoder id or family.")
    ] = None,
    method: Annotated[str, typer.Option(help="mfm, tsne, umap, mds, dcm or pca.")] = "mfm",
    ks: KsOpt = "5,10,20",
    seed: Annotated[
        int, typer.Option(min=0, max=2**32 - 1, help="random_state of the method.")
    ] = 0,
    refine_steps: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="MFM only: steps of its k-NN refinement phase (default 250, fewer for "
            "datasets under 2,000 points; 0 skips it for a faster fit with poorer "
            "neighbourhoods).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Fit a 2-D projection of a workspace dataset and store it with its quality figures."""
    from modalchorus.projecting import (
        check_joint_sizes,
        project_dataset,
        require_datasets,
        resolve_encoder_id,
    )
    from modalchorus.store import Workspace

    with user_errors():
        _check_method(method)
        if refine_steps is not None and method != "mfm":
            raise ValueError("--refine-steps applies to --method mfm only")
        k_values = _parse_ints(ks, "--k")
        ws = Workspace.open(workspace)
        encoder_id = resolve_encoder_id(ws, encoder)
        names = [dataset] if dataset else require_datasets(ws)
        usable: dict[str, tuple[tuple[int, ...], str | None]] = {}
        # Unknown, too small or partly embedded datasets fail before anything is fitted.
        for name in names:
            info = _workspace_dataset(ws, name)
            check_joint_sizes(name, info.n_images, info.n_texts)
            _check_embedded(ws, name, encoder_id, info.n_images + info.n_texts)
            usable[name] = _scored_ks(k_values, info.n_images, info.n_texts)
        params = None if refine_steps is None else {"refine_iter": refine_steps}
        infos = []
        for name in names:
            name_ks, note = usable[name]
            if note:
                err.print(f"note: {name}: {note}", soft_wrap=True)
            with progress_bar(f"{method}: {name}") as report:
                infos.append(
                    project_dataset(
                        ws, name, encoder_id, method, name_ks, seed, params, progress=report
                    )
                )
        data = {
            "projections": [
                {"name": i.name, "method": i.method, "n_items": i.n_items, "metrics": i.metrics}
                for i in infos
            ]
        }

    def render(d: dict[str, Any]) -> None:
        for p in d["projections"]:
            m = p["metrics"]
            figures = ", ".join(
                f"{key} {m[key]:.3f}"
                for key in m
                if key.startswith("inter_") and "_to_" not in key and m[key] is not None
            )
            out.print(
                f"{p['name']}: {p['n_items']} points, fit {m['fit_seconds']:.1f} s; {figures}"
            )

    emit(data, as_json, render)


@app.command("export")
def export_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    out_file: Annotated[
        Path, typer.Argument(metavar="OUT", help="File to write: .csv, .parquet or .jsonl.")
    ],
    dataset: Annotated[
        str | None,
        typer.Option(help="Dataset whose projection to write.", show_default="the only one stored"),
    ] = None,
    encoder: Annotated[
        str | None, typer.Option("--encoder", "-e", help="Stored encoder id or family.")
    ] = None,
    method: Annotated[str, typer.Option(help="mfm, tsne, umap, mds, dcm or pca.")] = "mfm",
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Write a stored projection's x, y with each item's id, kind, label and text."""
    from modalchorus.exporting import (
        check_export_path,
        find_projection,
        projection_table,
        write_table,
    )
    from modalchorus.projecting import resolve_encoder_id
    from modalchorus.store import Workspace

    with user_errors():
        check_export_path(out_file, overwrite=force, hint="--force")  # before any work
        ws = Workspace.open(workspace)
        name = find_projection(ws, resolve_encoder_id(ws, encoder), method, dataset)
        table = projection_table(ws, name)
        path = write_table(table, out_file, overwrite=force)
    data = {"projection": name, "rows": len(table), "path": str(path)}
    emit(
        data,
        as_json,
        lambda d: out.print(f"{d['projection']}: {d['rows']} rows -> {d['path']}", soft_wrap=True),
    )


def _check_intents_file(path: Path) -> None:
    """Refuse an ``--intents`` path that is not a file, naming it (not a bare Errno)."""
    if not path.exists():
        raise ValueError(f"--intents {path} does not exist")
    if not path.is_file():
        raise ValueError(f"--intents {path} is not a file")


def _read_intents(path: Path) -> list[Any]:
    """Intents from a JSON file: a list of intent objects or ``{"intents": [...]}``."""
    from modalchorus.align import IntentError, intent_from_dict

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IntentError(f"{path} is not valid JSON: {e}") from e
    if isinstance(data, dict) and "intents" in data:
        data = data["intents"]
    if not isinstance(data, list):
        raise IntentError(f"{path} must hold a list of intents or an object with 'intents'")
    intents = []
    for n, spec in enumerate(data, start=1):
        try:
            intents.append(intent_from_dict(spec))
        except IntentError as e:
            raise IntentError(f"{path}: intent {n}: {e}") from e
    return intents


def _metric_line(metrics: dict[str, Any]) -> str:
    if metrics.get("task") == "zero-shot classification":
        return f"accuracy {metrics['accuracy']:.4f}"
    if metrics.get("task") == "cross-modal retrieval":
        keys = ("t2i_R@1", "t2i_R@5", "t2i_R@10")
        return ", ".join(f"{k} {metrics[k]:.3f}" for k in keys if k in metrics)
    return "no task metrics"


@app.command("align")
def align_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    intents: Annotated[
        Path | None, typer.Option(help="JSON file of intents (see README: Alignment).")
    ] = None,
    scope: Annotated[str, typer.Option(help="adapter, lora or last-blocks.")] = "adapter",
    encoder: Annotated[
        str | None, typer.Option("--encoder", "-e", help="Stored encoder id or family.")
    ] = None,
    steps: Annotated[
        int | None, typer.Option(min=1, help="Tuning steps.", show_default="per scope")
    ] = None,
    export: Annotated[
        Path | None, typer.Option(help="Also export the run's weights into this folder.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an earlier export in the --export folder.")
    ] = False,
    undo: Annotated[bool, typer.Option("--undo", help="Undo the active run instead.")] = False,
    redo: Annotated[bool, typer.Option("--redo", help="Redo the last undone run.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Tune the encoder toward intents, re-embed, re-project in the same frame, record the run.

    Prints task metrics before and after. Nothing changes in the workspace unless the
    whole run succeeds.
    """
    from modalchorus.align import (
        SCOPES,
        active_version,
        export_run,
        redo_alignment,
        run_alignment,
        undo_alignment,
    )
    from modalchorus.align.state import infer_base_spec
    from modalchorus.encoders import create_encoder
    from modalchorus.projecting import resolve_encoder_id
    from modalchorus.store import Workspace

    with user_errors():
        if sum([intents is not None, undo, redo]) != 1:
            raise ValueError("give exactly one of --intents FILE, --undo or --redo")
        if scope not in SCOPES:  # before loading an encoder for it
            raise ValueError(f"unknown --scope {scope!r}; use one of {', '.join(SCOPES)}")
        if intents is not None:
            _check_intents_file(intents)  # before any work, as the export folder
        if export is not None:
            _check_export_folder(export, force)
        ws = Workspace.open(workspace)
        encoder_id = resolve_encoder_id(ws, encoder)
        if undo or redo:
            run = (undo_alignment if undo else redo_alignment)(ws, encoder_id)
            data = {"action": "undo" if undo else "redo", "run": _jsonable(run and run.__dict__)}
            data["active_version"] = active_version(ws, ws.encoder_family(encoder_id))
        else:
            parsed = _read_intents(intents)
            base_encoder = None
            if scope != "adapter":
                base = ws.encoder_family(encoder_id)
                spec = infer_base_spec(base)
                if spec is None:
                    raise ValueError(f"cannot tell how to load base encoder {base!r} for {scope}")
                base_encoder = create_encoder(spec, device="cpu")
            with progress_bar(f"{scope} run") as report:
                run = run_alignment(
                    ws,
                    parsed,
                    encoder_id=encoder_id,
                    scope=scope,
                    params=None if steps is None else {"steps": steps},
                    encoder=base_encoder,
                    progress=report,
                )
            data = {"action": "align", "run": _jsonable(run.__dict__)}
            if export is not None:
                data["exported_to"] = str(export_run(ws, run.id, export, overwrite=force))

    def render(d: dict[str, Any]) -> None:
        run = d["run"]
        if d["action"] != "align":
            what = "nothing to " + d["action"] if run is None else f"{d['action']} run {run['id']}"
            out.print(f"{what}; active version {d['active_version']}")
            return
        out.print(
            f"run {run['id']} ({run['scope']}, {run['seconds']:.1f} s) -> {run['encoder_id']}"
        )
        for name, before in run["metrics_before"].items():
            after = run["metrics_after"][name]
            out.print(f"  {name}: before {_metric_line(before)}; after {_metric_line(after)}")
        if "exported_to" in d:
            out.print(f"  weights exported to {d['exported_to']}")

    emit(data, as_json, render)


def _open_cache(cache: Path) -> Workspace:
    """The ``--cache`` workspace, made if missing; a failure names the option."""
    from modalchorus.store import Workspace

    try:
        return Workspace.open_or_create(cache)
    except (WorkspaceError, OSError) as exc:
        raise ValueError(f"--cache {cache}: {exc}") from None


def _check_evaluate_sizes(dataset: str, limit: int | None, n_images: int, n_texts: int) -> None:
    """Refuse, naming ``--limit``, a dataset too small for a joint map, before any fit."""
    from modalchorus.projecting import MIN_POINTS_PER_MODALITY

    if min(n_images, n_texts) < MIN_POINTS_PER_MODALITY:
        raise ValueError(
            f"{dataset} with --limit {limit} has {n_images} image(s) and {n_texts} text(s): a "
            f"joint map needs at least {MIN_POINTS_PER_MODALITY} of each; give a larger --limit"
        )


def _evaluate_params(
    methods: list[str], report: Callable[[float, str], None]
) -> dict[str, dict[str, Any]]:
    """``compare_methods``' ``method_params``: the MFM reports its steps (a long fit would
    otherwise hold the bar still)."""
    if "mfm" not in methods:
        return {}
    place, count = methods.index("mfm"), len(methods)

    def step(done: int, loss: float, fitting: Any) -> bool:
        fraction = done / max(1, sum(fitting.schedule_.values()))
        report((place + fraction) / count, f"fitting mfm ({place + 1}/{count}): step {done}")
        return False  # never stops the fit

    return {"mfm": {"callback": step}}


@app.command("evaluate")
def evaluate_cmd(
    dataset: Annotated[str, typer.Option(help="cifar10, coco-mini or flickr8k.")],
    encoder: EncoderOpt = "pocket",
    methods: Annotated[str, typer.Option(help="Comma-separated methods.")] = (
        "mfm,tsne,umap,mds,dcm,pca"
    ),
    ks: KsOpt = "5,10,20",
    limit: Annotated[
        int | None, typer.Option(min=1, help="First N images (cifar10: 2000 unless given).")
    ] = None,
    data_dir: DataDirOpt = None,
    cache: Annotated[
        Path, typer.Option(help="Workspace caching the embeddings between runs.")
    ] = DEFAULT_EVAL_CACHE,
    output: Annotated[
        Path | None,
        typer.Option(help="JSON output file.", show_default="evaluate-DATASET.json here"),
    ] = None,
    seed: Annotated[
        int, typer.Option(min=0, max=2**32 - 1, help="random_state of every method.")
    ] = 0,
    device: DeviceOpt = "auto",
    as_json: JsonFlag = False,
) -> None:
    """Compare MFM with the baselines on one dataset: one table, plus a JSON file."""
    from modalchorus.data import load_dataset
    from modalchorus.embedding import embed_dataset
    from modalchorus.encoders import create_encoder
    from modalchorus.projecting import METHODS, usable_ks
    from modalchorus.projection.evaluate import compare_methods, format_table
    from modalchorus.store import image_item_id
    from modalchorus.tasks.classification import with_class_prompts

    with user_errors():
        if dataset not in ("cifar10", "coco-mini", "flickr8k"):
            raise ValueError(f"unknown dataset {dataset!r}; use cifar10, coco-mini or flickr8k")
        method_list = list(dict.fromkeys(m.strip() for m in methods.split(",") if m.strip()))
        if unknown := [m for m in method_list if m not in METHODS]:
            raise ValueError(f"unknown method(s) {unknown}; use any of {', '.join(METHODS)}")
        if not method_list:
            raise ValueError("--methods names no method")
        k_values = _parse_ints(ks, "--k")
        target = output or Path(f"evaluate-{dataset}.json")
        _check_output_folder(target, "--output")
        enc = create_encoder(encoder, device=device)
        limit = limit or (2000 if dataset == "cifar10" else None)
        ds = load_dataset(dataset, data_dir=data_dir, **({"limit": limit} if limit else {}))
        ds = with_class_prompts(ds)
        ws = _open_cache(cache)
        with progress_bar(f"embed: {ds.name}") as shown:
            embed_dataset(ws, ds, enc, progress=shown)
        items = ws.items(dataset=ds.name)
        wanted = {image_item_id(ds.name, r.id) for r in ds.images}
        images = items[items["id"].isin(wanted)]
        texts = items[
            (items["kind"] == "text") & (items["image_id"].isin(wanted) | items["image_id"].isna())
        ]
        _, X_image = ws.get_embeddings(enc.id, images["id"].tolist())
        _, X_text = ws.get_embeddings(enc.id, texts["id"].tolist())
        _check_evaluate_sizes(dataset, limit, len(images), len(texts))
        concepts = np.flatnonzero(texts["image_id"].isna().to_numpy())
        k_values, note = usable_ks(k_values, len(images), len(texts), None)  # scores all
        if note:
            err.print(f"note: {dataset}: {note}", soft_wrap=True)
        with progress_bar(f"{dataset}: fitting") as report:
            rows = compare_methods(
                X_image,
                X_text,
                method_list,
                k_values,
                concepts=concepts if len(concepts) else None,
                random_state=seed,
                progress=report,
                method_params=_evaluate_params(method_list, report),
            )
        table = format_table(rows, k_values)
        result = {
            "dataset": dataset,
            "encoder": enc.id,
            "n_images": len(images),
            "n_texts": len(texts),
            "ks": list(k_values),
            "rows": [{k: v for k, v in r.items() if k not in ("Y_image", "Y_text")} for r in rows],
        }
        target.write_text(json.dumps(_jsonable(result), indent=2) + "\n")
        result["output"] = str(target)

    emit(result, as_json, lambda d: out.print(table, highlight=False, soft_wrap=True))


def _reflow_help(doc: str | None) -> str | None:
    """A docstring with each paragraph on one line, for ``--help`` to wrap.

    Typer keeps the single line breaks of every paragraph after the first, so a docstring
    wrapped at 100 columns would show ragged lines in an 80-column help screen.
    """
    if doc is None:
        return None
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


for _command in app.registered_commands:
    _command.help = _command.help or _reflow_help(_command.callback and _command.callback.__doc__)


if __name__ == "__main__":
    app()
