"""Shared by the API and browser tests: a small real workspace and a real server process.

The workspace (60 CIFAR-10 demo images, 6 per class, with the 50 class prompts, and 20
COCO-mini photos with their 100 captions, embedded with ``pocket``; Modal Fusion Map
projections of both datasets stored) is built once per test session, and one
``modalchorus serve`` subprocess on a free port serves it to every test module.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

CHROMIUM = Path(os.environ.get("MODALCHORUS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CIFAR = "cifar10-demo"
COCO = "coco-mini"
IMAGES_PER_CLASS = 6
COCO_IMAGES = 20

_shared: dict[str, object] = {}


def click_point(page, row: int, attempts: int = 3) -> str:
    """Click the point of ``row`` on the projection canvas; returns the id shown in detail.

    Moves onto the point first (as a user would) and clicks again if a click is dropped
    (it can happen while the freshly drawn map is still settling).
    """
    box = page.locator(".projection-view canvas").bounding_box()
    for attempt in range(attempts):
        x, y = page.evaluate(f"window.__modalchorus.screenPosition({row})")
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.click(box["x"] + x, box["y"] + y)
        try:
            page.wait_for_function("window.__modalchorus.detailId !== null", timeout=10_000)
            return page.evaluate("window.__modalchorus.detailId")
        except Exception:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def build_small_workspace(path: Path, encoder) -> Path:
    """Embed the small demo subset into a new workspace at ``path`` and fit its maps."""
    from modalchorus.demo import demo_datasets
    from modalchorus.embedding import embed_dataset
    from modalchorus.server.projections import fit_and_store
    from modalchorus.server.views import build_view
    from modalchorus.store import Workspace

    cifar, coco = demo_datasets()
    taken: dict[str | None, int] = {}
    images = []
    for record in cifar.images:
        if taken.get(record.label, 0) < IMAGES_PER_CLASS:
            taken[record.label] = taken.get(record.label, 0) + 1
            images.append(record)
    cifar = dataclasses.replace(cifar, images=images)
    coco = dataclasses.replace(coco, images=coco.images[:COCO_IMAGES])
    workspace = Workspace.create(path)
    for dataset in (cifar, coco):
        embed_dataset(workspace, dataset, encoder)
    for name in (CIFAR, COCO):
        view = build_view(workspace, name, encoder.id)
        fit_and_store(workspace, view, "mfm", lambda *_: None)
    return path


def small_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's small workspace (built on first use)."""
    if "workspace" not in _shared:
        from modalchorus.encoders import create_encoder

        path = tmp_path_factory.getbasetemp() / "ui-workspace"
        if path.exists():
            shutil.rmtree(path)
        _shared["workspace"] = build_small_workspace(path, create_encoder("pocket", device="cpu"))
    return _shared["workspace"]  # type: ignore[return-value]


def workspace_copy(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A private copy of the session's small workspace, for tests that change it."""
    path = tmp_path_factory.mktemp(name) / "workspace"
    shutil.copytree(small_workspace(tmp_path_factory), path)
    return path


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """``modalchorus serve WORKSPACE --port N`` in a subprocess.

    Parameters
    ----------
    workspace : Path
    startup_timeout : float
        Seconds to wait for ``/api/health``.
    script : str, optional
        Python code to run instead of ``modalchorus serve``, given the workspace and the
        port as ``sys.argv[1:]`` (e.g. an app with other settings).
    """

    def __init__(
        self, workspace: Path, startup_timeout: float = 90.0, script: str | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workspace.parent / f"server-{self.port}.log"
        if script is None:
            cmd = [sys.executable, "-m", "modalchorus.cli", "serve", str(workspace)]
            cmd += ["--port", str(self.port)]
        else:
            cmd = [sys.executable, "-c", script, str(workspace), str(self.port)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + startup_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Terminate the process (and wait for it)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def live_server(
    tmp_path_factory: pytest.TempPathFactory, add_cleanup: Callable[[Callable[[], None]], None]
) -> LiveServer:
    """The session's server (started on first use, stopped at the end of the session)."""
    if "server" not in _shared:
        server = LiveServer(small_workspace(tmp_path_factory))
        add_cleanup(server.stop)
        _shared["server"] = server
    return _shared["server"]  # type: ignore[return-value]


@contextmanager
def served_client(workspace: Path, timeout: float = 300) -> Iterator[httpx.Client]:
    """An HTTP client of a real server process serving ``workspace`` (stopped after)."""
    server = LiveServer(workspace)
    try:
        with httpx.Client(base_url=server.url, timeout=timeout) as client:
            yield client
    finally:
        server.stop()
