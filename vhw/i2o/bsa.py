"""Random Block Storage (BSA, class 0x010) DDM: one per disk image.

Message layout is Linux ``i2o_block.c`` / NetBSD ``struct i2o_rbs_block_read``:
word 4 control flags and timeout, word 5 byte count, words 6-7 the 64-bit
byte offset, then the SGL (word 8 in both drivers).  The reply carries the
transferred byte count in word 5 (Linux ``i2o_block_reply`` completes
``body[1]`` bytes); error replies add the failing offset (NetBSD
``struct i2o_rbs_reply``).  Detailed status uses the BSA table
(I2O_BSA_DSC_*), request-format errors the generic codes above 0x0E.

Sans-I/O: the medium is the :class:`Storage` port a :class:`Disk` brings
(the image file behind it is :mod:`vhw.i2o.image_file`'s; tests use
:class:`MemoryStorage`).  Write-through disks hand every write to the
storage before the reply; write-back disks keep dirty blocks here, in
memory (bounded), until CacheFlush, DeviceReset, eject, IOP reset or close.
Guest input never raises; a failing storage (OSError) is a DEVICE_FAILURE
reply.
"""

from __future__ import annotations

import itertools
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from ..pci.dma import DmaError
from . import frames as f
from .executive import EVENT_DEVICE_RESET, Host, Target, error, gather, reply, scatter
from .params import (BSA_CACHE_CONTROL, BSA_DEVICE_INFO, BSA_MEDIA_INFO, BSA_OPERATION, Field,
                     ParamStore, ScalarGroup, identity_groups)

log = logging.getLogger(__name__)

CLASS_RANDOM_BLOCK_STORAGE = 0x010
#: The largest transfer one message may ask for; bigger ones are refused
#: rather than buffered (Linux sends at most max_sectors, 64 KiB-1 MiB).
MAX_TRANSFER = 16 << 20
#: Dirty write-back data above this is written out at once.
WRITE_BACK_LIMIT = 16 << 20


class Storage(Protocol):
    """A disk's medium, byte addressed; failures raise OSError.

    ``read`` returns exactly ``count`` bytes (zeros past the end), ``write``
    takes all of ``data`` before it returns, ``flush`` makes what was
    written durable, ``size`` is fixed while the disk is in use.
    """

    @property
    def size(self) -> int: ...

    def read(self, offset: int, count: int) -> bytes: ...

    def write(self, offset: int, data: bytes) -> None: ...

    def flush(self) -> None: ...


class MemoryStorage:
    """A :class:`Storage` in a bytearray: a RAM disk, and the medium of model tests."""

    def __init__(self, size: int | bytes) -> None:
        self.data = bytearray(size)
        self.flushes = 0

    @property
    def size(self) -> int:
        return len(self.data)

    def read(self, offset: int, count: int) -> bytes:
        return bytes(self.data[offset:offset + count]).ljust(count, b"\0")

    def write(self, offset: int, data: bytes) -> None:
        if offset + len(data) > len(self.data):
            raise OSError(f"write of {len(data)} bytes at {offset} beyond the end ({len(self.data)})")
        self.data[offset:offset + len(data)] = data

    def flush(self) -> None:
        self.flushes += 1


@dataclass(frozen=True)
class Disk:
    """One disk of the IOP: its medium and how the DDM presents it."""

    storage: Storage
    name: str                  # what logs call it (the image path); its last part is the device description
    block_size: int = 512      # storage size must be a multiple
    write_back: bool = False   # False = write-through (every BsaBlockWrite reaches the storage before the reply)
    read_only: bool = False


class BsaStatus(IntEnum):
    """Block storage detailed status (I2O_BSA_DSC_*)."""

    SUCCESS = 0x00
    MEDIA_ERROR = 0x01
    ACCESS_ERROR = 0x02
    DEVICE_FAILURE = 0x03
    DEVICE_NOT_READY = 0x04
    MEDIA_NOT_PRESENT = 0x05
    MEDIA_LOCKED = 0x06
    MEDIA_FAILURE = 0x07
    PROTOCOL_FAILURE = 0x08
    BUS_FAILURE = 0x09
    ACCESS_VIOLATION = 0x0A
    WRITE_PROTECTED = 0x0B
    DEVICE_RESET = 0x0C
    VOLUME_CHANGED = 0x0D
    TIMEOUT = 0x0E


# Event indicators (I2O_EVT_IND_BSA_*).
EVENT_VOLUME_LOAD = 0x01
EVENT_VOLUME_UNLOAD = 0x02
EVENT_CAPACITY_CHANGE = 0x08
# Device info capabilities / state bits (NetBSD I2O_RBS_CAP_* / I2O_RBS_STATE_*).
CAP_CACHING = 0x01
CAP_REMOVABLE_MEDIA = 0x08
CAP_READ_ONLY = 0x20
STATE_CACHING = 0x01
STATE_POWERED_ON = 0x02
STATE_READY = 0x04
STATE_MEDIA_LOADED = 0x08
STATE_DEVICE_LOADED = 0x10
STATE_READ_ONLY = 0x20
# Cache control write policy: 0 none (write-through to the medium), 2 write-back.
WRITE_POLICY_NONE = 0
WRITE_POLICY_BACK = 2


class BlockStorage(Target):
    """A BSA DDM over one :class:`Disk`."""

    class_id = CLASS_RANDOM_BLOCK_STORAGE
    event_capabilities = EVENT_VOLUME_LOAD | EVENT_VOLUME_UNLOAD | EVENT_CAPACITY_CHANGE | EVENT_DEVICE_RESET

    def __init__(self, tid: int, host: Host, disk: Disk, *, org_id: int = 0,
                 vendor: str = "vhw", product: str = "I2O disk", revision: str = "1.0",
                 serial: str = "") -> None:
        bs = disk.block_size
        if bs < 512 or bs % 512:
            raise ValueError(f"block size {bs} is not a multiple of 512")
        size = disk.storage.size
        if size % bs:
            raise ValueError(f"{disk.name}: size {size} is not a multiple of {bs}")
        self.disk = disk
        self.storage = disk.storage
        self.block_size = bs
        self.capacity = size
        self.org_id = org_id
        self.identity_tag = f"disk{tid:04x}".encode()[:8]
        self._dirty: dict[int, bytes] = {}
        params = ParamStore(identity_groups(
            class_id=CLASS_RANDOM_BLOCK_STORAGE, tid=tid, vendor=vendor, product=product,
            description=disk.name.rsplit("/", 1)[-1], revision=revision,
            serial=serial or f"vhw-{tid:03x}", ddm_name="vhw block storage"))
        params.add(ScalarGroup(BSA_DEVICE_INFO, [
            Field("type", "B"), Field("paths", "B"), Field("power_state", "H"),
            Field("block_size", "I"), Field("capacity", "Q"), Field("capabilities", "I"),
            Field("state", "I")], [0, 1, 0, bs, size, 0, 0]))
        params.add(ScalarGroup(BSA_OPERATION, [
            Field("auto_reassign", "B", True), Field("reassign_tolerance", "B", True),
            Field("retries", "B", True), Field("reserved", "B"),
            Field("reassign_size", "I", True), Field("expected_timeout", "I", True),
            Field("rw_verify_timeout", "I", True), Field("rw_verify_timeout_base", "I", True),
            Field("timeout_base", "I", True), Field("ordered_request_depth", "I", True),
            Field("atomic_write_size", "I", True)],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, bs]))
        params.add(ScalarGroup(BSA_CACHE_CONTROL, [
            Field("total_cache_size", "I"), Field("read_cache_size", "I"),
            Field("write_cache_size", "I"), Field("write_policy", "B"), Field("read_policy", "B"),
            Field("error_correction", "B"), Field("reserved", "B")],
            [WRITE_BACK_LIMIT if disk.write_back else 0, 0,
             WRITE_BACK_LIMIT if disk.write_back else 0,
             WRITE_POLICY_BACK if disk.write_back else WRITE_POLICY_NONE, 0, 0, 0]))
        params.add(ScalarGroup(BSA_MEDIA_INFO, [Field("capacity", "Q"), Field("block_size", "I")],
                               [size, bs]))
        super().__init__(tid, host, params)
        self.reset()

    # -- state ---------------------------------------------------------------
    def reset(self) -> None:
        """Power-on after writing back dirty blocks: media loaded and
        unlocked, powered on, no claims.  A failing image keeps its dirty
        blocks for the next flush rather than failing the reset."""
        try:
            self.flush()
        except OSError as e:
            log.error("i2o disk %s: write-back on reset failed: %s", self.disk.name, e)
            self.host.counters["disk_error"] += 1
        super().reset()
        self.media_present = True
        self.locked = False
        self.power_state = 0
        self._refresh()

    def _refresh(self) -> None:
        info = self.params[BSA_DEVICE_INFO]
        caps = CAP_REMOVABLE_MEDIA | (CAP_CACHING if self.disk.write_back else 0)
        caps |= CAP_READ_ONLY if self.disk.read_only else 0
        state = STATE_POWERED_ON | STATE_READY | STATE_DEVICE_LOADED
        state |= STATE_MEDIA_LOADED if self.media_present else 0
        state |= STATE_READ_ONLY if self.disk.read_only else 0
        state |= STATE_CACHING if self.disk.write_back else 0
        info.put(2, self.power_state)
        info.put(5, caps)
        info.put(6, state)

    @property
    def dirty_bytes(self) -> int:
        return len(self._dirty) * self.block_size

    # -- storage ---------------------------------------------------------------
    def _read(self, offset: int, count: int) -> bytes:
        data = bytearray(self.storage.read(offset, count))
        if self._dirty:
            bs = self.block_size
            first, n = offset // bs, count // bs
            blocks = (self._dirty.keys() if len(self._dirty) < n else range(first, first + n))
            for b in blocks:
                if first <= b < first + n and b in self._dirty:
                    start = (b - first) * bs
                    data[start:start + bs] = self._dirty[b]
        return bytes(data)

    def _write(self, offset: int, data: bytes) -> None:
        if not self.disk.write_back:
            self.storage.write(offset, data)
            return
        bs = self.block_size
        first = offset // bs
        for i in range(len(data) // bs):
            self._dirty[first + i] = data[i * bs:(i + 1) * bs]
        if self.dirty_bytes > WRITE_BACK_LIMIT:
            self.host.counters["write_back_spill"] += 1
            self.flush()

    def flush(self) -> None:
        """Write dirty blocks out to the storage in runs of consecutive blocks."""
        if not self._dirty:
            return
        bs = self.block_size
        blocks = sorted(self._dirty)
        run_start, run = blocks[0], [self._dirty[blocks[0]]]
        for prev, b in itertools.pairwise(blocks):
            if b != prev + 1:
                self.storage.write(run_start * bs, b"".join(run))
                run_start, run = b, []
            run.append(self._dirty[b])
        self.storage.write(run_start * bs, b"".join(run))
        self._dirty.clear()

    def sync(self) -> None:
        """Flush and make the storage durable (CacheFlush, eject, close)."""
        self.flush()
        if not self.disk.read_only:
            self.storage.flush()

    def close(self) -> None:
        """Everything written reaches the storage, durably; the storage
        itself stays open (whoever opened it closes it)."""
        self.sync()

    # -- messages --------------------------------------------------------------
    def handle_class(self, req: f.Request) -> bytes | None:
        handler = _BSA.get(req.header.function)
        if handler is None:
            return error(req, f.DetailedStatus.UNSUPPORTED_FUNCTION)
        try:
            return handler(self, req)
        except OSError as e:  # the storage failed, not the guest
            log.error("i2o disk %s: %s", self.disk.name, e)
            self.host.counters["disk_error"] += 1
            return error(req, BsaStatus.DEVICE_FAILURE)

    def _transfer_reply(self, req: f.Request, status: int, detail: int, done: int,
                        offset: int) -> bytes:
        body = struct.pack("<I", done)
        if status != f.ReqStatus.SUCCESS:
            body += struct.pack("<Q", offset)
        return reply(req, status, detail, body)

    def _transfer(self, req: f.Request) -> bytes:
        """BsaBlockRead / BsaBlockWrite / BsaBlockWriteVerify."""
        writing = req.header.function != f.Function.BSA_BLOCK_READ
        count, offset = req.word(5), req.word(6) | req.word(7) << 32
        fail = f.ReqStatus.ERROR_NO_DATA_TRANSFER

        def refuse(detail: int) -> bytes:
            self.host.counters["bsa_refused"] += 1
            return self._transfer_reply(req, fail, detail, 0, offset)

        if req.header.size < 8 or req.header.sgl_offset < 8:
            return refuse(f.DetailedStatus.MESSAGE_TOO_SMALL)
        sgl = req.sgl(page_size=self.host.page_size)
        if isinstance(sgl, f.RequestError):
            return refuse(sgl.detail)
        if not self.media_present:
            return refuse(BsaStatus.MEDIA_NOT_PRESENT)
        if writing and self.disk.read_only:
            return refuse(BsaStatus.WRITE_PROTECTED)
        bs = self.block_size
        if (offset % bs or count % bs or offset + count > self.capacity or count > MAX_TRANSFER
                or sgl.total < count):
            return refuse(f.DetailedStatus.INVALID_PARAMETER)
        if writing:
            try:
                data = gather(self.host.dma, sgl.elements, count)
            except DmaError:
                self.host.counters["dma_error"] += 1
                return refuse(BsaStatus.BUS_FAILURE)
            self._write(offset, data)
            self.host.counters["bsa_write_bytes"] += count
            return self._transfer_reply(req, f.ReqStatus.SUCCESS, 0, count, offset)
        data = self._read(offset, count)
        done, failed = scatter(self.host.dma, sgl.elements, data)
        self.host.counters["bsa_read_bytes"] += done
        if failed:
            self.host.counters["dma_error"] += 1
            status = f.ReqStatus.ERROR_PARTIAL_TRANSFER if done else fail
            return self._transfer_reply(req, status, BsaStatus.BUS_FAILURE, done, offset + done)
        return self._transfer_reply(req, f.ReqStatus.SUCCESS, 0, done, offset)

    def _cache_flush(self, req: f.Request) -> bytes:
        self.sync()
        return reply(req)

    def _device_reset(self, req: f.Request) -> bytes:
        self.flush()
        self.locked = False
        self.notify(EVENT_DEVICE_RESET)
        return reply(req)

    def _status_check(self, req: f.Request) -> bytes:
        if not self.media_present:
            return error(req, BsaStatus.MEDIA_NOT_PRESENT)
        return reply(req)

    def _mount(self, req: f.Request) -> bytes:
        if not self.media_present:
            self.media_present = True
            self._refresh()
            self.notify(EVENT_VOLUME_LOAD)
        return reply(req)

    def _eject(self, req: f.Request) -> bytes:
        if self.locked:
            return error(req, BsaStatus.MEDIA_LOCKED)
        if self.media_present:
            self.sync()
            self.media_present = False
            self._refresh()
            self.notify(EVENT_VOLUME_UNLOAD)
        return reply(req)

    def _lock(self, req: f.Request) -> bytes:
        self.locked = req.header.function == f.Function.BSA_MEDIA_LOCK
        return reply(req)

    def _power(self, req: f.Request) -> bytes:
        """Power management: remember the requested state (word 4 bits 24-31)."""
        self.power_state = req.word(4) >> 24
        self._refresh()
        return reply(req)


_BSA: dict[int, Callable[[BlockStorage, f.Request], bytes]] = {
    f.Function.BSA_BLOCK_READ: BlockStorage._transfer,
    f.Function.BSA_BLOCK_WRITE: BlockStorage._transfer,
    f.Function.BSA_BLOCK_WRITE_VERIFY: BlockStorage._transfer,
    f.Function.BSA_CACHE_FLUSH: BlockStorage._cache_flush,
    f.Function.BSA_DEVICE_RESET: BlockStorage._device_reset,
    f.Function.BSA_STATUS_CHECK: BlockStorage._status_check,
    f.Function.BSA_MEDIA_MOUNT: BlockStorage._mount,
    f.Function.BSA_MEDIA_EJECT: BlockStorage._eject,
    f.Function.BSA_MEDIA_LOCK: BlockStorage._lock,
    f.Function.BSA_MEDIA_UNLOCK: BlockStorage._lock,
    f.Function.BSA_POWER_MANAGEMENT: BlockStorage._power,
}
