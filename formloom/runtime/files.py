"""Uploaded files: attachments, images and hand-written signatures.

A file is stored once, checked against the field's rules, and referenced from records by the
JSON of :func:`file_value`. The client's content type is never trusted: images are recognised
by their first bytes, other files get the type their extension implies.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import mimetypes
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, exists, func, literal_column, select, text
from sqlalchemy.orm import Session

from formloom.platform.auth import Action, authorize
from formloom.platform.errors import FormloomError, NotFound
from formloom.platform.models import App, Record, StoredFile, User
from formloom.platform.storage import Storage
from formloom.runtime.fields import ID_LIMIT, ascii_digits

KB = 1024
MB = 1024 * 1024
MAX_NAME_LENGTH = 255
SIGNATURE_MAX_BYTES = 1 * MB
SIGNATURE_PREFIX = "data:image/png;base64,"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# The image types shown in the browser (inline); every other file is downloaded.
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})

# Characters Windows does not allow in file names; replaced so downloads can be saved anywhere.
_RESERVED = set('<>:"|?*')


class FileRejected(FormloomError):
    """An upload that breaks the rules; the message names the file and what would be accepted."""

    http_status = 422
    code = "file_rejected"

    def __init__(self, message: str, field: str = "file"):
        super().__init__(message)
        self.field = field

    def field_messages(self) -> dict[str, list[str]]:
        return {self.field: [self.message]}


@dataclass(frozen=True)
class FileRules:
    """What a file field accepts. ``accept`` holds extensions (".pdf") or MIME types ("image/*")."""

    max_bytes: int = 20 * MB
    accept: tuple[str, ...] = ()
    images_only: bool = False


def sanitize_filename(filename: str | None) -> str:
    """A safe display name: no folders, no control characters, at most 255 characters.

    Letters of every script (CJK included) are kept; an empty result becomes "file".
    """
    name = unicodedata.normalize("NFC", filename or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join("_" if ch in _RESERVED else ch for ch in name
                   if not unicodedata.category(ch).startswith("C"))
    name = name.strip().strip(".").strip()
    if not name:
        return "file"
    if len(name) > MAX_NAME_LENGTH:
        stem, dot, ext = name.rpartition(".")
        if dot and stem and 0 < len(ext) <= 16:
            name = stem[:MAX_NAME_LENGTH - len(ext) - 1].rstrip() + "." + ext
        else:
            name = name[:MAX_NAME_LENGTH]
    return name


def extension_of(name: str) -> str:
    """The lower-case extension with its dot (".pdf"), or "" when the name has none."""
    stem, dot, ext = name.rpartition(".")
    return "." + ext.lower() if dot and stem and ext else ""


def sniff_image(data: bytes) -> str | None:
    """The image type that ``data`` starts with (PNG, JPEG, GIF, WebP), or None."""
    if data.startswith(PNG_SIGNATURE):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def content_type_of(name: str, data: bytes) -> str:
    """The type to store and serve: from the bytes for images, else from the extension.

    A name that claims one of the displayable image types without the bytes to match is
    stored as ``application/octet-stream``, so it is never shown inline.
    """
    sniffed = sniff_image(data)
    if sniffed:
        return sniffed
    guessed, _ = mimetypes.guess_type(name, strict=False)
    if not guessed or guessed in INLINE_IMAGE_TYPES or len(guessed) > 100:
        return "application/octet-stream"
    return guessed


def size_text(size: int, round_up: bool = True) -> str:
    """A size for people: "25.3 MB", "120 KB", "12 bytes" (rounded away from the limit)."""
    if size < KB:
        return f"{size} byte{'s' if size != 1 else ''}"
    unit, name = (MB, "MB") if size >= MB else (KB, "KB")
    tenths = (math.ceil if round_up else math.floor)(size * 10 / unit) / 10
    return f"{tenths:.1f}".removesuffix(".0") + f" {name}"


def _accepted(rules: FileRules, name: str, content_type: str) -> bool:
    if not rules.accept:
        return True
    extension = extension_of(name)
    for entry in rules.accept:
        entry = entry.strip().lower()
        if entry.startswith("."):
            if extension == entry:
                return True
        elif entry.endswith("/*"):
            if content_type.startswith(entry[:-1]):
                return True
        elif content_type == entry:
            return True
    return False


def save_upload(session: Session, storage: Storage, app: App, user: User | None, filename: str,
                data: bytes, content_type: str | None, rules: FileRules, *,
                size: int | None = None) -> StoredFile:
    """Check an upload against ``rules`` and store it; nothing is stored when it is refused.

    ``content_type`` is what the client said and is only informative. ``size`` is the full
    size when ``data`` was cut short at ``rules.max_bytes + 1`` bytes while reading.
    """
    authorize(session, user, Action.CREATE_RECORD, app)
    name = sanitize_filename(filename)
    if not data:
        raise FileRejected(f"{name} is empty; choose a file that has content.")
    if len(data) > rules.max_bytes:
        actual = max(size or 0, len(data))
        raise FileRejected(f"{name} is {size_text(actual)}; the limit is "
                           f"{size_text(rules.max_bytes, round_up=False)}.")
    detected = content_type_of(name, data)
    if rules.images_only and detected not in INLINE_IMAGE_TYPES:
        raise FileRejected(f"{name} is not a PNG, JPEG, GIF or WebP image; choose an image file.")
    if not _accepted(rules, name, detected):
        raise FileRejected(f"{name} is not an accepted type; accepted: {', '.join(rules.accept)}.")
    return _store(session, storage, app, user, name, data, detected)


def save_signature(session: Session, storage: Storage, app: App, user: User | None,
                   data_url: str) -> StoredFile:
    """Store a signature drawn in the browser, sent as a ``data:image/png;base64,`` URL."""
    authorize(session, user, Action.CREATE_RECORD, app)
    if not isinstance(data_url, str) or not data_url[:len(SIGNATURE_PREFIX)].lower() == SIGNATURE_PREFIX:
        raise FileRejected("The signature must be a PNG image sent as a "
                           "'data:image/png;base64,...' URL.", "signature")
    encoded = data_url[len(SIGNATURE_PREFIX):].strip()
    if len(encoded) > math.ceil(SIGNATURE_MAX_BYTES / 3) * 4:
        raise FileRejected(f"The signature is larger than {size_text(SIGNATURE_MAX_BYTES, round_up=False)}; "
                           "draw it on a smaller pad.", "signature")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise FileRejected("The signature is not valid base64 data; send the canvas's "
                           "toDataURL('image/png') value unchanged.", "signature") from None
    if not data:
        raise FileRejected("The signature is empty; sign before saving.", "signature")
    if len(data) > SIGNATURE_MAX_BYTES:
        raise FileRejected(f"The signature is {size_text(len(data))}; the limit is "
                           f"{size_text(SIGNATURE_MAX_BYTES, round_up=False)}.", "signature")
    if not data.startswith(PNG_SIGNATURE):
        raise FileRejected("The signature is not a PNG image; send the canvas's "
                           "toDataURL('image/png') value.", "signature")
    return _store(session, storage, app, user, "signature.png", data, "image/png")


def _store(session: Session, storage: Storage, app: App, user: User | None, name: str, data: bytes,
           content_type: str) -> StoredFile:
    # Bytes first, then the row: if the transaction fails later the blob stays unreferenced
    # (harmless, and reused by the next upload of the same content); a row never lacks its bytes.
    key = storage.put(data)
    stored = StoredFile(app_id=app.id, storage_key=key, name=name, content_type=content_type,
                        size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                        created_by=user.id if user else None)
    session.add(stored)
    session.flush()
    return stored


def get_file(session: Session, user: User | None, app: App, file_id: int) -> StoredFile:
    """The file ``file_id`` of ``app``, if ``user`` uploaded it or may read a record holding it.

    A file held only in a field hidden from the user, or by records outside their scope, is
    as missing to them as a file that does not exist (404, the same answer).
    """
    authorize(session, user, Action.READ_RECORDS, app)
    stored = session.get(StoredFile, file_id) if 1 <= file_id <= 2**31 - 1 else None
    if stored is None or stored.app_id != app.id or not _may_read(session, user, app, stored):
        raise NotFound(f"App '{app.key}' has no file {file_id}.")
    return stored


def _may_read(session: Session, user: User, app: App, stored: StoredFile) -> bool:
    from formloom.runtime import access, catalog
    from formloom.runtime.fields import FILE_TYPES

    rules = access.policy(session, user, app)
    if rules.superuser or stored.created_by == user.id:
        return True
    for entity_key in rules.readable_entities(catalog.entity_keys(session, app)):
        hidden = rules.hidden(entity_key)
        for spec in catalog.entity(session, app, entity_key).fields:
            if spec.type.name in FILE_TYPES and spec.key not in hidden and session.scalar(
                    select(Record.id).where(Record.app_id == app.id, Record.entity_key == entity_key,
                                            Record.deleted_at.is_(None), rules.scope(entity_key),
                                            _holds_file(session, spec.key, stored.id)).limit(1)) is not None:
                return True
    return False


def _holds_file(session: Session, key: str, file_id: int):
    """``data[key]`` (a list of ``{"id": ...}`` objects) holds the file ``file_id``."""
    if session.get_bind().dialect.name == "postgresql":
        return text(f"coalesce((records.data -> '{key}') @> CAST(:f AS jsonb), false)").bindparams(
            bindparam("f", json.dumps([{"id": file_id}]), unique=True))
    each = func.json_each(Record.data, f"$.{key}").table_valued("value")
    return exists(select(literal_column("1")).select_from(each).where(
        func.json_extract(each.c.value, "$.id") == file_id))


def file_value(stored: StoredFile) -> dict:
    """The JSON a record keeps for a file: ``{"id", "name", "size", "type"}``."""
    return {"id": stored.id, "name": stored.name, "size": stored.size, "type": stored.content_type}


def existing_files(session: Session, app_id: int, ids: Iterable[int]) -> dict[int, StoredFile]:
    """The files among ``ids`` that exist in the app, by id (others are left out)."""
    wanted = {i for i in ids if isinstance(i, int) and not isinstance(i, bool)}
    if not wanted:
        return {}
    rows = session.scalars(select(StoredFile).where(StoredFile.app_id == app_id, StoredFile.id.in_(wanted)))
    return {row.id: row for row in rows}


def _id_text(text: str) -> int | None:
    """A file id sent back by a form, if it can be one."""
    return int(text) if ascii_digits(text) and len(text) < 11 and int(text) <= ID_LIMIT else None


def receive_field(session: Session, storage: Storage, app: App, user: User | None, type_name: str,
                  definition: dict, *, kept: list[str], drawn: str, uploads: list) -> list[int]:
    """The file ids of one file, image or signature field of a submitted form.

    ``kept`` are the ids of files already held that the rep left ticked, ``drawn`` the
    signature field's value (a PNG data URL, or the id of the signature on file), ``uploads``
    the files chosen now (werkzeug ``FileStorage``). New files are stored against the field's rules;
    a refusal raises :class:`FileRejected`.
    """
    ids = [i for i in map(_id_text, kept) if i is not None]
    if type_name == "signature":
        if drawn.startswith("data:"):
            return [save_signature(session, storage, app, user, drawn).id]
        return [i for i in [_id_text(drawn)] if i is not None]
    rules = FileRules(max_bytes=int(definition.get("max_size_mb", 20) * MB), accept=tuple(definition.get("accept", ())),
                      images_only=type_name == "image")
    for upload in uploads:
        if upload.filename:
            data = upload.stream.read(rules.max_bytes + 1)
            ids.append(save_upload(session, storage, app, user, upload.filename, data, upload.mimetype, rules).id)
    return ids
