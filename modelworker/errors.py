class ModelError(Exception):
    """A request the model worker could not answer, with a code web code can map.

    ``status`` is the HTTP status the API answers with: 400 for bad input,
    503 for a model that is loading, unavailable or a worker that did not
    reply, 500 for a failed forward pass.
    """

    def __init__(self, code: str, message: str, status: int = 500, **extra):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "status": self.status, **self.extra}

    @classmethod
    def from_dict(cls, data: dict) -> "ModelError":
        data = dict(data)
        return cls(data.pop("code"), data.pop("message"), data.pop("status", 500), **data)
