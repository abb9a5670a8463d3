"""How every process connects to Temporal: address, namespace, TLS, and the payload codec.

Personal data travels in workflow inputs; the codec encrypts every payload with AES-GCM before it leaves the
process, so Temporal's history, its Web UI and its database never hold it in clear.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import os
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import TypeAdapter
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter, pydantic_data_converter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    PayloadCodec,
)
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from config.settings import Settings

ENCODING = b"binary/encrypted"


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over the whole serialised payload; the key id lets keys be rotated later."""

    def __init__(self, key_b64: str, key_id: str = "k1") -> None:
        key = base64.b64decode(key_b64)
        if len(key) != 32:
            raise ValueError("the payload key must be 32 bytes, base64-encoded")
        self._aead = AESGCM(key)
        self._key_id = key_id.encode()

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            nonce = os.urandom(12)
            out.append(
                Payload(
                    metadata={"encoding": ENCODING, "encryption-key-id": self._key_id},
                    data=nonce + self._aead.encrypt(nonce, p.SerializeToString(), None),
                )
            )
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding", b"") != ENCODING:
                out.append(p)
                continue
            if p.metadata.get("encryption-key-id", b"") != self._key_id:
                raise ValueError("payload encrypted with an unknown key id")
            plain = self._aead.decrypt(p.data[:12], p.data[12:], None)
            decoded = Payload()
            decoded.ParseFromString(plain)
            out.append(decoded)
        return out


# One cache of pydantic type adapters for the whole process. The SDK makes a payload converter for every
# workflow instance and command context, each with an empty cache of its own, so the worker built the adapter
# of every dataclass it decoded (CaseInput, ActionRequest, each activity's result) again and again: about 15% of
# its CPU in bench.lifecycle_bench's profile. Bounded, as the SDK's own cache is.
_TYPE_ADAPTERS: functools._lru_cache_wrapper[TypeAdapter[Any]] = functools.lru_cache(maxsize=1024)(TypeAdapter)


class _SharedAdaptersJSONConverter(PydanticJSONPlainPayloadConverter):
    """The SDK's pydantic JSON converter with the process-wide adapter cache."""

    def __init__(self) -> None:
        super().__init__()
        self._type_adapter = _TYPE_ADAPTERS


class PayloadConverter(CompositePayloadConverter):
    """The SDK's pydantic payload converter (same encodings, same JSON), sharing its type adapters."""

    def __init__(self) -> None:
        json_converter = _SharedAdaptersJSONConverter()
        super().__init__(
            *(
                json_converter if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic JSON (datetimes, enums and dataclasses at any depth) with our encryption codec."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_converter_class=PayloadConverter,
        payload_codec=EncryptionCodec(settings.payload_key),
    )


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
