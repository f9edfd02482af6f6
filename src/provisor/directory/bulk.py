"""SCIM Bulk (RFC 7644 §3.7): many operations in one request, with bulkId references.

Operations run one by one, each in its own savepoint of a transaction that holds up to
``CHUNK`` of them (one commit for them all; the response is sent after the last commit). An
operation that fails is rolled back alone. An operation that refers to a resource created
by another (``"bulkId:qwerty"`` in its path or data) waits until that one
has run, whatever their order in the request; references that can never be resolved
(unknown, failed or circular) fail with 409.

A caller that manages users or groups may send a bulk request (``view`` may not: bulk
changes); each operation is authorised by the directory's rule for its resource type (users:
``manage_users``, groups: ``manage_groups``), and one that is not allowed fails alone with
403.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from provisor.context import Context, refusal, requires
from provisor.directory.service import MANAGERS, Directory, PreparedCreate, Rendered
from provisor.errors import PreconditionFailedError
from provisor.scim import schemas as s
from provisor.scim.errors import (
    InvalidSyntaxError,
    InvalidValueError,
    SCIMError,
    TooLargeError,
    error_body,
)
from provisor.types import EntityType

_KINDS = {kind.endpoint.lower(): kind for kind in EntityType}
_METHODS = ("POST", "PUT", "PATCH", "DELETE")
_PREFIX = "bulkId:"
CHUNK = 100  # operations committed together at most (the writer is held meanwhile)


@dataclass
class _Operation:
    index: int
    method: str
    path: str
    bulk_id: str | None
    version: str | None
    data: Any
    refs: set[str] = field(default_factory=set)
    result: dict[str, Any] | None = None


class BulkProcessor:
    """Runs one BulkRequest against the directory."""

    def __init__(
        self,
        directory: Directory,
        base_url: str,
        *,
        max_operations: int,
    ) -> None:
        self.directory = directory
        self.base_url = base_url
        self.max_operations = max_operations
        self.ids: dict[str, str] = {}  # bulkId -> id of the resource created

    @requires(*MANAGERS)
    def run(self, ctx: Context, body: Any) -> bytes:
        """Run a BulkRequest for the call's actor; the BulkResponse's JSON text."""
        ops, fail_on_errors = self._parse(body)
        pending = list(ops)
        done: list[_Operation] = []
        errors = 0
        prepared: dict[int, PreparedCreate | dict[str, Any]] = {}
        while pending:
            for upcoming in pending[:CHUNK]:  # checked and built before taking the writer
                if upcoming.index not in prepared:
                    ahead = self._prepare(ctx, upcoming)
                    if ahead is not None:
                        prepared[upcoming.index] = ahead
            with self.directory.db.write(ctx, grouped=True):
                for _ in range(CHUNK):
                    runnable = (op for op in pending if op.refs <= self.ids.keys())
                    op = next(runnable, None)
                    if op is None:
                        break
                    pending.remove(op)
                    op.result = self._execute(ctx, op, prepared.pop(op.index, None))
                    done.append(op)
                    if int(op.result["status"]) >= 400:
                        errors += 1
                        if fail_on_errors is not None and errors >= fail_on_errors:
                            pending = []  # stop: the rest is neither run nor reported
                            break
                else:
                    continue  # the chunk is full: commit it, then the next one
            break  # nothing left that can run
        for op in pending:
            missing = ", ".join(sorted(op.refs - self.ids.keys()))
            op.result = _error(
                op, 409, f"Unresolvable bulkId reference(s): {missing}.", "invalidValue"
            )
            done.append(op)
        done.sort(key=lambda op: op.index)
        return orjson.dumps(
            {"schemas": [s.BULK_RESPONSE], "Operations": [op.result for op in done]}
        )

    def _parse(self, body: Any) -> tuple[list[_Operation], int | None]:
        if not isinstance(body, dict):
            raise InvalidSyntaxError("A BulkRequest must be a JSON object.")
        schemas = body.get("schemas")
        if not isinstance(schemas, list) or s.BULK_REQUEST not in schemas:
            raise InvalidSyntaxError(f"A BulkRequest must have schemas [{s.BULK_REQUEST!r}].")
        raw_ops = body.get("Operations")
        if not isinstance(raw_ops, list) or not raw_ops:
            raise InvalidSyntaxError("'Operations' must be a non-empty list.")
        if len(raw_ops) > self.max_operations:
            raise TooLargeError(
                f"The request has {len(raw_ops)} operations; maxOperations is "
                f"{self.max_operations}."
            )
        fail_on_errors = body.get("failOnErrors")
        if fail_on_errors is not None and (
            isinstance(fail_on_errors, bool)
            or not isinstance(fail_on_errors, int)
            or fail_on_errors < 1
        ):
            raise InvalidValueError("failOnErrors must be a positive integer.")
        ops: list[_Operation] = []
        seen: set[str] = set()
        for index, raw in enumerate(raw_ops):
            if not isinstance(raw, dict):
                raise InvalidSyntaxError(f"Operations[{index}] must be an object.")
            method = str(raw.get("method", "")).upper()
            if method not in _METHODS:
                raise InvalidSyntaxError(
                    f"Operations[{index}].method must be one of {', '.join(_METHODS)}."
                )
            path = raw.get("path")
            if not isinstance(path, str) or not path.startswith("/"):
                raise InvalidSyntaxError(f"Operations[{index}].path must be like /Users/<id>.")
            bulk_id = raw.get("bulkId")
            if bulk_id is not None and (not isinstance(bulk_id, str) or not bulk_id):
                raise InvalidSyntaxError(f"Operations[{index}].bulkId must be a string.")
            if method == "POST" and bulk_id is None:
                raise InvalidSyntaxError(f"Operations[{index}]: a POST needs a bulkId.")
            if bulk_id is not None:
                if bulk_id in seen:
                    raise InvalidValueError(f"bulkId {bulk_id!r} is used twice.")
                seen.add(bulk_id)
            version = raw.get("version")
            data = raw.get("data")
            if method != "DELETE" and data is None:
                raise InvalidSyntaxError(f"Operations[{index}] ({method}) needs data.")
            op = _Operation(
                index, method, path, bulk_id, version if isinstance(version, str) else None, data
            )
            op.refs = _references(path)
            if _may_refer(data):
                op.refs |= _references(data)
            ops.append(op)
        return ops, fail_on_errors

    def _prepare(self, ctx: Context, op: _Operation) -> PreparedCreate | dict[str, Any] | None:
        """A POST without bulkId references checked ahead: what to store, or its error
        result; None for an operation that runs the plain way."""
        parts = [p for p in op.path.split("/") if p]
        kind = _KINDS.get(parts[0].lower()) if len(parts) == 1 else None
        if op.method != "POST" or op.refs or kind is None or not self.directory.may(ctx, kind):
            return None
        try:
            return self.directory.prepare_create(ctx, kind, op.data)
        except SCIMError as exc:
            return _error(op, exc.status, exc.message, exc.scim_type)

    def _execute(
        self, ctx: Context, op: _Operation, ahead: PreparedCreate | dict[str, Any] | None
    ) -> dict[str, Any]:
        try:
            path, data = op.path, op.data
            if op.refs:
                path, data = _substitute(path, self.ids), _substitute(data, self.ids)
            parts = [p for p in path.split("/") if p]
            kind = _KINDS.get(parts[0].lower()) if parts else None
            if kind is None or len(parts) > 2:
                raise InvalidValueError(f"Unsupported path {op.path!r}: use /Users or /Groups.")
            if not self.directory.may(ctx, kind):
                permission = self.directory.permission(kind)
                denied = refusal(ctx.actor, (permission,), f"change {kind.value}s")
                return _error(op, 403, denied)
            if op.method == "POST":
                if len(parts) != 1:
                    raise InvalidValueError("POST goes to /Users or /Groups.")
                if isinstance(ahead, dict):  # its check failed
                    return ahead
                if ahead is None:
                    ahead = self.directory.prepare_create(ctx, kind, data)
                result = self.directory.create_prepared(ctx, ahead, self.base_url, with_body=False)
                assert op.bulk_id is not None
                self.ids[op.bulk_id] = result.id
                return _success(op, 201, result)
            if len(parts) != 2:
                raise InvalidValueError(f"{op.method} needs a resource: /{parts[0]}/<id>.")
            resource_id = parts[1]
            if op.method == "PUT":
                result = self.directory.replace(
                    ctx, kind, resource_id, data, self.base_url, op.version
                )
                return _success(op, 200, result)
            if op.method == "PATCH":
                result = self.directory.patch(
                    ctx, kind, resource_id, data, self.base_url, if_match=op.version
                )
                return _success(op, 200, result)
            self.directory.delete(ctx, kind, resource_id, op.version)
            return {
                "method": op.method,
                "path": op.path,
                "status": "204",
                **({"bulkId": op.bulk_id} if op.bulk_id else {}),
            }
        except SCIMError as exc:
            return _error(op, exc.status, exc.message, exc.scim_type)
        except PreconditionFailedError as exc:  # If-Match: the operation's version
            return _error(op, 412, exc.message)


def _success(op: _Operation, status: int, result: Rendered) -> dict[str, Any]:
    out: dict[str, Any] = {"method": op.method}
    if op.bulk_id:
        out["bulkId"] = op.bulk_id
    out.update(location=result.location, version=result.etag, status=str(status))
    return out


def _error(
    op: _Operation, status: int, detail: str, scim_type: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"method": op.method}
    if op.bulk_id:
        out["bulkId"] = op.bulk_id
    if op.method != "POST":
        out["path"] = op.path
    out.update(status=str(status), response=error_body(status, detail, scim_type))
    return out


def _may_refer(data: Any) -> bool:
    """Whether ``data`` may hold a bulkId reference: its JSON text names one (most
    operations do not, and skip the walk through their values)."""
    try:
        return _PREFIX.encode() in orjson.dumps(data)
    except orjson.JSONEncodeError:  # a lone surrogate: walk
        return True


def _references(value: Any) -> set[str]:
    """The bulkIds that ``value`` refers to ("bulkId:x" strings, or a path segment)."""
    if isinstance(value, str):
        if value.startswith(_PREFIX):
            return {value[len(_PREFIX) :]}
        return {seg[len(_PREFIX) :] for seg in value.split("/") if seg.startswith(_PREFIX)}
    if isinstance(value, dict):
        return set().union(*(_references(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value)) if value else set()
    return set()


def _substitute(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        if value.startswith(_PREFIX) and "/" not in value:
            return ids.get(value[len(_PREFIX) :], value)
        if _PREFIX in value:
            return "/".join(
                ids.get(seg[len(_PREFIX) :], seg) if seg.startswith(_PREFIX) else seg
                for seg in value.split("/")
            )
        return value
    if isinstance(value, dict):
        return {k: _substitute(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, ids) for v in value]
    return value
