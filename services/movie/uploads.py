"""Client-streamed uploads to disk: a size limit, a safe file name, all or nothing."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from services.common.errors import InvalidArgument

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True, slots=True)
class Chunk:
    filename: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Stored:
    name: str
    size_bytes: int


def safe_filename(name: str) -> str:
    """The name itself if it is a plain file name; anything with a path, dots-only or odd characters is refused."""
    if not SAFE_NAME.fullmatch(name) or name in {".", ".."} or ".." in name:
        raise InvalidArgument(
            "filename must be 1 to 128 characters of letters, digits, '.', '_' or '-', "
            "start with a letter or digit, and contain no path"
        )
    return name


class UploadStore:
    def __init__(self, folder: Path, max_bytes: int) -> None:
        self._folder = folder
        self.max_bytes = max_bytes

    async def store(self, chunks: AsyncIterator[Chunk]) -> Stored:
        name: str | None = None
        size = 0
        await asyncio.to_thread(self._folder.mkdir, parents=True, exist_ok=True)
        fd, tmp = await asyncio.to_thread(tempfile.mkstemp, dir=self._folder, prefix=".upload-")
        handle = os.fdopen(fd, "wb")
        try:
            async for chunk in chunks:
                if chunk.filename:
                    if name is None:
                        name = safe_filename(chunk.filename)
                    elif chunk.filename != name:
                        raise InvalidArgument("filename changed in the middle of the upload")
                elif name is None:
                    raise InvalidArgument("the first message must carry the filename")
                size += len(chunk.data)
                if size > self.max_bytes:
                    raise InvalidArgument(f"file is larger than the {self.max_bytes} byte limit")
                if chunk.data:
                    await asyncio.to_thread(handle.write, chunk.data)
            if name is None:
                raise InvalidArgument("empty upload: no messages")
            await asyncio.to_thread(handle.close)
            await asyncio.to_thread(os.replace, tmp, self._folder / name)
            return Stored(name, size)
        finally:
            if not handle.closed:
                handle.close()
            await asyncio.to_thread(Path(tmp).unlink, missing_ok=True)  # gone already on success
