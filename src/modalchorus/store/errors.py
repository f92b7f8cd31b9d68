"""Exceptions raised by the workspace store."""

from __future__ import annotations


class WorkspaceError(Exception):
    """Base class of every error the workspace store raises on purpose."""


class NotAWorkspaceError(WorkspaceError, ValueError):
    """The path does not hold a ModalChorus workspace (nothing was created there)."""


class IncompatibleWorkspaceError(WorkspaceError, ValueError):
    """The workspace was written by a newer, incompatible schema version."""


class WorkspaceExistsError(WorkspaceError, FileExistsError):
    """``Workspace.create`` found a workspace already at the path."""


class WorkspaceLockedError(WorkspaceError, TimeoutError):
    """Another writer held the workspace's write lock for longer than the timeout."""


class NotFoundError(WorkspaceError, KeyError):
    """Something the workspace does not hold.

    Subclasses ``KeyError`` so ``except KeyError`` works, but prints its message
    plainly instead of ``KeyError``'s quoted repr.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownItemError(NotFoundError):
    """An item id the workspace does not hold (or that has no embedding asked for)."""


class UnknownDatasetError(NotFoundError):
    """A dataset name the workspace does not hold."""


class UnknownEncoderError(NotFoundError):
    """An encoder id the workspace holds no embeddings for."""


class UnknownProjectionError(NotFoundError):
    """A projection name the workspace does not hold."""


class UnknownSetError(NotFoundError):
    """A set id the workspace does not hold."""


class UnknownIntentError(NotFoundError):
    """An intent id the workspace does not hold."""


class UnknownRunError(NotFoundError):
    """An alignment run id the workspace does not hold."""


class ItemInUseError(WorkspaceError, ValueError):
    """Items cannot be removed: a stored intent names them, or a set would be left empty."""


class SetInUseError(WorkspaceError, ValueError):
    """A set cannot be deleted: a stored intent names it."""


class DuplicateIntentError(WorkspaceError, ValueError):
    """The same intent is stored already (:attr:`existing` is its id); a second copy
    would count twice in a run."""

    def __init__(self, message: str, existing: int) -> None:
        super().__init__(message)
        self.existing = existing
