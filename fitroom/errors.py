"""The project exception: a plain message for the shopper, brand or operator.

The CLI maps it to exit code 2 and the API to a 4xx answer `{"error": code, "detail": message}`.
"""


class FitroomError(Exception):
    """A user-facing failure.

    Parameters
    ----------
    code : str
        Short machine-readable code, e.g. ``"no_person"``.
    message : str
        One plain sentence saying what was wrong.
    """

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def to_dict(self) -> dict:
        return {"error": self.code, "detail": self.message}
