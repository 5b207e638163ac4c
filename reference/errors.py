class OracleError(Exception):
    """The binding is documented to raise here, not to return a value.

    ``kind`` is the documented error class name (``IndexError``,
    ``InvalidArgumentError``...) that the binding's convention names.
    """

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
