from __future__ import annotations


class SendError(RuntimeError):
    """The provider refused or failed; `permanent` says whether retrying can help."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
