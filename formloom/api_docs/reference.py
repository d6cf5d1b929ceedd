"""The reference page's content, read from an OpenAPI document: sections, operations, field rows.

The page shows what the document says and nothing else, so the two cannot disagree. Everything
here is plain data; the template escapes every string (labels are admin-defined).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from formloom.runtime.labels import text_of

METHODS = ("get", "post", "put", "patch", "delete")
MAX_DEPTH = 4  # nested objects shown this deep; deeper ones name their schema
ENUM_SHOWN = 12

PAGE_TEXT = {
    "title": {"en": "API reference", "zh-CN": "API 参考"},
    "intro": {"en": "Every operation your apps offer, built from their published definitions. Send "
                    "'Authorization: Bearer <token>' (create a token with 'formloom token create USER').",
              "zh-CN": "根据已发布的定义生成的全部接口。请求时带上 'Authorization: Bearer <令牌>'"
                       "（用 'formloom token create 用户名' 创建令牌）。"},
    "download": {"en": "Download the OpenAPI document (JSON)", "zh-CN": "下载 OpenAPI 文档（JSON）"},
    "contents": {"en": "Contents", "zh-CN": "目录"},
    "general": {"en": "General", "zh-CN": "通用接口"},
    "parameters": {"en": "Parameters", "zh-CN": "参数"},
    "request_body": {"en": "Request body", "zh-CN": "请求体"},
    "responses": {"en": "Responses", "zh-CN": "响应"},
    "errors": {"en": "Errors", "zh-CN": "错误"},
    "field": {"en": "Field", "zh-CN": "字段"},
    "label": {"en": "Label", "zh-CN": "名称"},
    "type": {"en": "Type", "zh-CN": "类型"},
    "notes": {"en": "Notes", "zh-CN": "说明"},
    "name": {"en": "Name", "zh-CN": "名称"},
    "in": {"en": "In", "zh-CN": "位置"},
    "required": {"en": "required", "zh-CN": "必填"},
    "read_only": {"en": "set by the server", "zh-CN": "由服务器填写"},
    "or_null": {"en": "or null", "zh-CN": "或 null"},
    "one_of": {"en": "one of", "zh-CN": "取值之一"},
    "array_of": {"en": "list of", "zh-CN": "列表，元素为"},
    "any": {"en": "any JSON value", "zh-CN": "任意 JSON 值"},
    "see": {"en": "see", "zh-CN": "见"},
    "shared": {"en": "Shared schemas", "zh-CN": "公共结构"},
    "error_shape": {"en": "Every error answers the Error schema", "zh-CN": "所有错误响应均为 Error 结构"},
    "relation_to": {"en": "id of a record of", "zh-CN": "关联记录的 id，实体"},
    "range": {"en": "range", "zh-CN": "范围"},
    "fields": {"en": "Fields", "zh-CN": "字段"},
    "fields_help": {"en": "The record's data: what reads answer, what create (* required) and PATCH take.",
                    "zh-CN": "记录的 data：读取时返回，创建（* 为必填）和 PATCH 时提交。"},
    "record": {"en": "Record", "zh-CN": "记录"},
    "more_fields": {"en": "other keys allowed", "zh-CN": "允许其他键"},
}


def page_text(locale: str) -> dict[str, str]:
    return {key: text_of(value, locale) for key, value in PAGE_TEXT.items()}


@dataclass
class Row:
    """One line of a field table: a property (indented by ``depth``) or a parameter."""

    key: str
    depth: int
    type: str
    title: str = ""
    required: bool = False
    notes: list[str] = field(default_factory=list)
    link: str | None = None  # a shared schema this row refers to


@dataclass
class Body:
    status: str
    description: str
    media_type: str | None
    rows: list[Row]
    link: str | None = None


@dataclass
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    parameters: list[Row]
    request: Body | None
    responses: list[Body]
    errors: list[str]


@dataclass
class Section:
    anchor: str
    title: str
    group: str  # the app's label, or "" for the general paths
    operations: list[Operation] = field(default_factory=list)
    schema_prefix: str | None = None  # an entity's sections: its schemas' common prefix
    fields: list[Row] = field(default_factory=list)  # an entity's fields (required: on create)
    record: list[Row] = field(default_factory=list)  # an entity's record envelope


@dataclass
class Reference:
    sections: list[Section]
    groups: list[tuple[str, list[Section]]]
    shared: list[tuple[str, str, list[Row]]]  # (name, description, rows)


class _Reader:
    """Walks schemas of one document, resolving references to its components."""

    def __init__(self, document: dict, text: dict[str, str]):
        self.components = document.get("components", {})
        self.schemas = self.components.get("schemas", {})
        self.entity_names = {name for name in self.schemas if "." in name}
        self.text = text

    def resolve(self, item: dict, section: str) -> dict:
        while "$ref" in item:
            item = self.components[section][item["$ref"].rsplit("/", 1)[1]]
        return item

    def ref_name(self, schema: dict) -> str | None:
        return schema["$ref"].rsplit("/", 1)[1] if "$ref" in schema else None

    def rows(self, schema: dict, depth: int = 0) -> list[Row]:
        """The rows of an object schema's properties, nested objects and lists of objects inline.

        A reference is expanded only at the top (a block of its own); deeper, its row links to it.
        """
        name = self.ref_name(schema)
        if name is not None:
            return self.rows(self.schemas[name], depth) if depth == 0 else []
        schema = _without_null(schema)
        if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
            return self.rows(schema["items"], depth)
        parts = [r for part in schema.get("allOf", []) for r in self.rows(part, depth)]
        return parts + self._properties(schema, depth)

    def _properties(self, schema: dict, depth: int) -> list[Row]:
        required = set(schema.get("required", []))
        out = []
        for key, prop in (schema.get("properties") or {}).items():
            out.append(self.row(key, prop, depth, key in required))
            if depth < MAX_DEPTH:
                out.extend(self.rows(prop, depth + 1))
        if schema.get("additionalProperties") is True and out and depth == 0:
            out.append(Row("…", depth, self.text["more_fields"]))
        return out

    def row(self, key: str, schema: dict, depth: int, required: bool) -> Row:
        plain = _without_null(schema)
        name = self.ref_name(plain)
        target = self.schemas.get(name, {}) if name else plain
        notes = []
        if target.get("description") and not name:
            notes.append(target["description"])
        if plain.get("readOnly"):
            notes.append(self.text["read_only"])
        if plain.get("x-formloom-target"):
            notes.append(f"{self.text['relation_to']} {plain['x-formloom-target']}")
        for extension in ("x-formloom-decimal-range", "x-formloom-date-range"):
            if plain.get(extension):
                bounds = plain[extension]
                notes.append(f"{self.text['range']} {bounds.get('min', '…')} – {bounds.get('max', '…')}")
        if name is None and plain.get("type") == "array" and isinstance(plain.get("items"), dict):
            name = self.ref_name(plain["items"])
        return Row(key, depth, self.type_text(schema), plain.get("title", ""), required, notes, name)

    def type_text(self, schema: dict) -> str:
        """A short description of a schema's type: 'integer 1–10000', 'one of: a, b', 'list of string'."""
        name = self.ref_name(schema)
        if name:
            return name
        for combined in ("anyOf", "oneOf"):
            if combined in schema:
                parts = [p for p in schema[combined] if p != {"type": "null"}]
                text = " | ".join(self.type_text(p) for p in parts)
                return f"{text} ({self.text['or_null']})" if len(parts) < len(schema[combined]) else text
        if "const" in schema:
            return f"= {_json_text(schema['const'])}"
        if "enum" in schema:
            values = [_json_text(v) for v in schema["enum"][:ENUM_SHOWN]]
            more = " …" if len(schema["enum"]) > ENUM_SHOWN else ""
            return f"{self.text['one_of']}: {', '.join(values)}{more}"
        kinds = schema.get("type")
        if isinstance(kinds, list):
            real = [k for k in kinds if k != "null"]
            text = " | ".join(self.type_text({**schema, "type": kind}) for kind in real)
            return f"{text} ({self.text['or_null']})" if "null" in kinds else text
        if kinds == "array":
            items = schema.get("items") or {}
            return f"{self.text['array_of']} {self.type_text(items)}"
        base = schema.get("x-formloom-type") or kinds or (self.text["any"] if not schema.get("properties")
                                                           else "object")
        details = []
        if schema.get("format"):
            details.append(schema["format"])
        if "minimum" in schema or "maximum" in schema:
            details.append(f"{schema.get('minimum', '…')}–{schema.get('maximum', '…')}")
        if "maxLength" in schema:
            details.append(f"≤ {schema['maxLength']}")
        if "pattern" in schema and not schema.get("format"):
            details.append(schema["pattern"])
        if schema.get("x-formloom-type") and kinds and kinds != schema["x-formloom-type"]:
            details.insert(0, kinds)
        return f"{base} ({', '.join(details)})" if details else str(base)


def _without_null(schema: dict) -> dict:
    """``X or null`` as ``X`` (the null is shown in the type text)."""
    parts = schema.get("anyOf")
    if parts and len(parts) == 2 and {"type": "null"} in parts:
        other = parts[0] if parts[1] == {"type": "null"} else parts[1]
        return {**{k: v for k, v in schema.items() if k != "anyOf"}, **other}
    return schema


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def build_reference(document: dict, locale: str) -> Reference:
    """The page's sections: one per tag of the document, in its order, grouped by app."""
    text = page_text(locale)
    reader = _Reader(document, text)
    sections: dict[str, Section] = {}
    apps = {a["key"]: a["label"] for a in document["info"].get("x-formloom-apps", [])}
    for tag in document.get("tags", []):
        app_key = tag.get("x-formloom-app")
        title = tag.get("description", tag["name"])
        if app_key and " · " in title:
            title = title.split(" · ", 1)[1]
        section = Section("tag-" + tag["name"], title, apps.get(app_key, "") if app_key else "")
        if app_key:
            _entity_blocks(reader, section, tag["name"])
        sections[tag["name"]] = section
    for path, item in document["paths"].items():
        shared_params = item.get("parameters", [])
        for method in METHODS:
            if method in item:
                operation = _operation(reader, path, method, item[method], shared_params)
                sections[item[method]["tags"][0]].operations.append(operation)
    ordered = [s for s in sections.values() if s.operations]
    groups: dict[str, list[Section]] = {}
    for section in ordered:
        groups.setdefault(section.group or text["general"], []).append(section)
    shared = [(name, schema.get("description", ""), reader.rows({"$ref": f"#/components/schemas/{name}"}))
              for name, schema in reader.schemas.items() if name not in reader.entity_names]
    return Reference(ordered, list(groups.items()), shared)


def _entity_blocks(reader: _Reader, section: Section, prefix: str) -> None:
    """An entity's field table (required marks from its create schema) and its record envelope."""
    section.schema_prefix = prefix
    required = set(reader.schemas.get(f"{prefix}.Create", {}).get("required", []))
    section.fields = reader.rows({"$ref": f"#/components/schemas/{prefix}.Data"})
    for row in section.fields:
        row.required = row.depth == 0 and row.key in required
    section.record = reader.rows({"$ref": f"#/components/schemas/{prefix}.Record"})


def _body(reader: _Reader, status: str, description: str, content: dict) -> Body:
    """A request or response body: a named schema is linked, an inline one is shown as rows."""
    media_type, media = next(iter(content.items()), (None, None))
    schema = media["schema"] if media else {}
    name = reader.ref_name(schema)
    return Body(status, description, media_type, [] if name or not media else reader.rows(schema), name)


def _operation(reader: _Reader, path: str, method: str, spec: dict, shared_params: list[dict]) -> Operation:
    parameters = [_parameter_row(reader, p) for p in [*shared_params, *spec.get("parameters", [])]]
    request = None
    if "requestBody" in spec:
        request = _body(reader, "", spec["requestBody"].get("description", ""), spec["requestBody"]["content"])
    responses, error_codes = [], []
    for status, response in spec["responses"].items():
        if "$ref" in response:
            error_codes.append(status)
        else:
            responses.append(_body(reader, status, response.get("description", ""), response.get("content", {})))
    return Operation(method.upper(), path, spec["operationId"], spec.get("summary", ""), parameters, request,
                     responses, error_codes)


def _parameter_row(reader: _Reader, parameter: dict) -> Row:
    row = reader.row(parameter["name"], parameter["schema"], 0, parameter.get("required", False))
    row.title = parameter["in"]
    if parameter.get("description"):
        row.notes.insert(0, parameter["description"])
    return row
