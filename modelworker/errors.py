from common.errors import AppError


class ModelError(AppError):
    """A request the model worker could not answer.

    ``status`` is the HTTP status the API answers with: 400 for bad input,
    503 for a model that is loading, unavailable or a worker that did not
    reply, 500 for a failed forward pass. It crosses process boundaries as
    :meth:`to_wire` data and is rendered like every other AppError.
    """

    def __init__(self, code: str, message: str, status: int = 500, **extra):
        super().__init__(code, message, status, **extra)

    def to_dict(self) -> dict:
        return self.to_wire()

    @classmethod
    def from_dict(cls, data: dict) -> "ModelError":
        return cls.from_wire(data)
