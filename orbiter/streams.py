"""The end of a gRPC stream, as an exception when the server ended it with an error.

grpc.aio's streaming calls cannot be awaited (only unary ones can); their
status has to be asked for. `raise_if_failed` turns a non-OK status into the
same AioRpcError a failed unary call raises, so callers handle both alike.
"""

from __future__ import annotations

from typing import Any

import grpc


async def raise_if_failed(call: Any) -> None:
    """Raise AioRpcError if the finished stream `call` ended with a non-OK status."""
    code = await call.code()
    if code != grpc.StatusCode.OK:
        raise grpc.aio.AioRpcError(
            code,
            grpc.aio.Metadata(),
            await call.trailing_metadata() or grpc.aio.Metadata(),
            await call.details(),
        )
