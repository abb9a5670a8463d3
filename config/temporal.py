"""How every process connects to Temporal: address, namespace, TLS, and the payload codec.

Personal data travels in workflow inputs; the codec encrypts every payload with AES-GCM before it leaves the
process, so Temporal's history, its Web UI and its database never hold it in clear. It compresses a payload
first (zlib) when that makes it smaller: JSON of Thai text shrinks to under half, and the history keeps each
transition's record (activities/rebuild.py), so this keeps Temporal's storage per case about where it was.
"""

from __future__ import annotations

import base64
import functools
import os
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import TypeAdapter
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter, PydanticPayloadConverter
from temporalio.converter import DataConverter, EncodingPayloadConverter, PayloadCodec
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from config.settings import Settings

ENCODING = b"binary/encrypted"
ZLIB = b"zlib"
# Smaller payloads are left as they are (zlib's header and the metadata entry would cost more than it saves).
COMPRESS_FROM_BYTES = 256
# A decompressed payload larger than this is refused (Temporal refuses payloads of 2 MB).
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over the whole serialised payload, zlib-compressed first when that makes it smaller; the key
    id lets keys be rotated later.

    A compressed payload says so in its metadata (``compression: zlib``), and that word is authenticated with
    the ciphertext (GCM associated data): a payload whose flag was added or removed fails to decrypt. Payloads
    written before compression (no flag) read as they always did.
    """

    def __init__(self, key_b64: str, key_id: str = "k1", *, compress: bool = True) -> None:
        key = base64.b64decode(key_b64)
        if len(key) != 32:
            raise ValueError("the payload key must be 32 bytes, base64-encoded")
        self._aead = AESGCM(key)
        self._key_id = key_id.encode()
        self._compress = compress

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            plain = p.SerializeToString()
            metadata = {"encoding": ENCODING, "encryption-key-id": self._key_id}
            if self._compress and len(plain) >= COMPRESS_FROM_BYTES:
                packed = zlib.compress(plain)
                if len(packed) < len(plain):
                    plain, metadata["compression"] = packed, ZLIB
            nonce = os.urandom(12)
            sealed = self._aead.encrypt(nonce, plain, metadata.get("compression"))
            out.append(Payload(metadata=metadata, data=nonce + sealed))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding", b"") != ENCODING:
                out.append(p)
                continue
            if p.metadata.get("encryption-key-id", b"") != self._key_id:
                raise ValueError("payload encrypted with an unknown key id")
            compression = p.metadata.get("compression") or None
            if compression not in (None, ZLIB):
                raise ValueError("payload compressed with an unknown method")
            plain = self._aead.decrypt(p.data[:12], p.data[12:], compression)
            if compression == ZLIB:
                inflate = zlib.decompressobj()
                plain = inflate.decompress(plain, MAX_PAYLOAD_BYTES)
                if inflate.unconsumed_tail or not inflate.eof:
                    raise ValueError("compressed payload too large or cut short")
            decoded = Payload()
            decoded.ParseFromString(plain)
            out.append(decoded)
        return out


# One pydantic TypeAdapter per type for the whole process. The SDK makes a new payload converter for every
# workflow it runs or replays, each with an empty adapter cache, so every workflow built the schemas of
# CaseInput, CaseState, ... again: half the CPU of a replay (py-spy, bench/replay_bench.py). An adapter is
# pure (the schema of its type), so sharing it changes no conversion. Bounded: types re-imported by a
# workflow sandbox are new objects, and must not pile up.
_TYPE_ADAPTERS: functools._lru_cache_wrapper[TypeAdapter[Any]] = functools.lru_cache(maxsize=256)(TypeAdapter)


@functools.cache
def _shared_converters() -> Mapping[bytes, EncodingPayloadConverter]:
    """The encoding converters of the SDK's pydantic converter, made once (they hold no per-workflow state)."""
    converters = PydanticPayloadConverter().converters
    for converter in converters.values():
        if isinstance(converter, PydanticJSONPlainPayloadConverter):
            converter._type_adapter = _TYPE_ADAPTERS
    return converters


class PayloadConverter(PydanticPayloadConverter):
    """The SDK's pydantic JSON converter, made once per process instead of once per workflow (its
    construction was another 8% of a replay's CPU), its type adapters shared."""

    def __init__(self) -> None:
        # CompositePayloadConverter's whole state is its converters, in order.
        self.converters = _shared_converters()


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic JSON (datetimes, enums and dataclasses at any depth) with our encryption codec."""
    codec = EncryptionCodec(settings.payload_key, compress=settings.payload_compression)
    return DataConverter(payload_converter_class=PayloadConverter, payload_codec=codec)


def worker_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime that serves the SDK's worker metrics to Prometheus, if an address is configured."""
    if not settings.worker_metrics_address:
        return None
    prometheus = PrometheusConfig(bind_address=settings.worker_metrics_address)
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


async def connect(settings: Settings, *, lazy: bool = False, runtime: Runtime | None = None) -> Client:
    """A Temporal client for this deployment (dev server, self-hosted cluster or Temporal Cloud).

    ``lazy`` connects on first use: the API starts, and serves what the read model can, while Temporal is
    still coming up or away; calls that need it answer 503 meanwhile.
    """
    return await Client.connect(
        settings.temporal_address,
        data_converter=data_converter(settings),
        lazy=lazy,
        runtime=runtime,
        **settings.temporal_connect_kwargs(),
    )
