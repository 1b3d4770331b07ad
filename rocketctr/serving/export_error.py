"""The one error an export raises when it refuses."""


class ExportError(RuntimeError):
    """An export that was refused; no version directory was left behind."""
