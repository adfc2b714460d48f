"""Raw disk image files behind the IOP's disks: the I/O side of the BSA model.

:class:`ImageFile` is the :class:`~vhw.i2o.bsa.Storage` port over one file
(``os.pread``/``os.pwrite``, ``fsync`` on flush).  :class:`DiskImages`
opens the images of one IOP from their :class:`DiskConfig` and gives the
model its :class:`~vhw.i2o.bsa.Disk` list; it closes the files, the model
never does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .bsa import Disk


@dataclass(frozen=True)
class DiskConfig:
    """One disk of the IOP as a description gives it."""

    image: Path                # raw disk image file (must exist; size multiple of block_size)
    block_size: int = 512
    write_back: bool = False   # False = write-through (every BsaBlockWrite reaches the file before the reply)
    read_only: bool = False


class ImageFile:
    """A raw image file, opened read-only or read-write; its size is fixed at open."""

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._fd = os.open(self.path, os.O_RDONLY if read_only else os.O_RDWR)
        try:
            self._size = os.fstat(self._fd).st_size
        except OSError:
            os.close(self._fd)
            raise

    @property
    def size(self) -> int:
        return self._size

    def read(self, offset: int, count: int) -> bytes:
        """``count`` bytes from ``offset``; what lies past the end of the file reads as zeros."""
        return os.pread(self._fd, count, offset).ljust(count, b"\0")

    def write(self, offset: int, data: bytes) -> None:
        """All of ``data`` at ``offset`` (pwrite may take less per call)."""
        view = memoryview(data)
        while view:
            n = os.pwrite(self._fd, view, offset)
            view, offset = view[n:], offset + n

    def flush(self) -> None:
        """Make what was written durable."""
        os.fsync(self._fd)

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> ImageFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class DiskImages:
    """The open image files of one IOP, as the disks its model is built with."""

    def __init__(self, configs: Iterable[DiskConfig]) -> None:
        self.files: list[ImageFile] = []
        self.disks: list[Disk] = []
        try:
            for c in configs:
                image = ImageFile(c.image, read_only=c.read_only)
                self.files.append(image)
                self.disks.append(Disk(image, name=str(c.image), block_size=c.block_size,
                                       write_back=c.write_back, read_only=c.read_only))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close every file (write back through the model first: Iop.close)."""
        for image in self.files:
            image.close()

    def __enter__(self) -> DiskImages:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
