"""Messages shown to reps, in English and Simplified Chinese.

A message is written once in English with ``{placeholders}``; the English text is also the key of
its translation (as in gettext). :func:`tr` fills in the placeholders in the reader's language.
A test checks that every message the product can produce has a Chinese translation.
"""
from __future__ import annotations

from typing import Any

ZH: dict[str, str] = {
    # sentences around a field's label
    "{label} {ending}.": "{label}{ending}。",
    "Row {row} of {label}: {column} {ending}.": "{label}第 {row} 行：{column}{ending}。",
    # type and shape
    "must be text, got {value}": "必须是文本，当前为 {value}",
    "must be {describes}, got {value}": "必须是{describes}，当前为 {value}",
    "must be {describes}": "必须是{describes}",
    "must be at most {limit} characters long": "最多 {limit} 个字符",
    "must be at least {limit} characters long": "至少 {limit} 个字符",
    "must be at least {limit}": "不能小于 {limit}",
    "must be at most {limit}": "不能大于 {limit}",
    "must be on or after {limit}": "不能早于 {limit}",
    "must be on or before {limit}": "不能晚于 {limit}",
    "needs at least {limit} choices": "至少选择 {limit} 项",
    "allows at most {limit} choices": "最多选择 {limit} 项",
    "must not repeat a choice": "选项不能重复",
    "is not valid: {value}": "无效：{value}",
    "is required": "为必填项",
    "must be a whole number": "必须是整数",
    "must be a whole number, got {value}": "必须是整数，当前为 {value}",
    "allows at most {places} decimal places": "最多 {places} 位小数",
    "allows at most 1 decimal place": "最多 1 位小数",
    "is too large": "数值过大",
    "must be one of: {names}; got {value}": "必须是以下之一：{names}；当前为 {value}",
    "must be one of the listed choices, got {value}": "必须是列出的选项之一，当前为 {value}",
    "must be a list of the listed choices, got {value}": "必须是列出的选项列表，当前为 {value}",
    "must be {describes}; #{id} is not one": "必须是{describes}；#{id} 不是",
    "must be a list, got {value}": "必须是列表，当前为 {value}",
    "needs at least {limit} rows": "至少需要 {limit} 行",
    "needs at least 1 row": "至少需要 1 行",
    "allows at most 1 row": "最多 1 行",
    "allows at most {limit} rows": "最多 {limit} 行",
    "allows at most {limit} tags": "最多 {limit} 个标签",
    "has a tag longer than {limit} characters": "有标签超过 {limit} 个字符",
    "must be between 1 and {limit}": "必须在 1 到 {limit} 之间",
    "must be a time like 14:30, got {value}": "必须是时间，例如 14:30，当前为 {value}",
    "must be a duration like 1h 30m or 90 (minutes), got {value}":
        "必须是时长，例如 1h 30m 或 90（分钟），当前为 {value}",
    "must have a latitude between -90 and 90 and a longitude between -180 and 180":
        "纬度必须在 -90 到 90 之间，经度必须在 -180 到 180 之间",
    "needs both latitude and longitude": "需要同时填写纬度和经度",
    "has an unknown part '{part}'; use {parts}": "包含未知部分 '{part}'；可用：{parts}",
    "allows at most {limit} files": "最多 {limit} 个文件",
    "refers to file #{id}, which was not uploaded to this app": "引用的文件 #{id} 未上传到此应用",
    "must be a drawn signature": "必须是手写签名",
    "is computed and cannot be typed in": "由系统计算，不能手动填写",
    "already belongs to {title}": "已被 {title} 使用",
    "is read-only now": "当前为只读",
    "'{key}' is not a field of {entity}; remove it or use one of: {keys}.":
        "'{key}' 不是{entity}的字段；请删除它，或使用以下字段之一：{keys}。",
    "contains a NUL character (U+0000), which cannot be stored; remove it": "包含无法保存的 NUL 字符 (U+0000)，请删除",
    "Row {row} of {label}: {ending}.": "{label}第 {row} 行：{ending}。",
    "contains a broken character (a lone surrogate), which cannot be stored; remove it":
        "包含无法保存的损坏字符（孤立代理项），请删除",
    "must be a row of column values, got {value}": "必须是一行各列的值，当前为 {value}",
    "must be a record that matches {field}": "必须是与{field}匹配的记录",
    # descriptions used inside the sentences above
    "text": "文本",
    "a whole number": "整数",
    "a number": "数字",
    "an amount of money": "金额",
    "a percentage": "百分比",
    "a date like 2026-03-31": "日期，例如 2026-03-31",
    "a date and time like 2026-03-31 14:30": "日期时间，例如 2026-03-31 14:30",
    "yes or no (true or false)": "是或否（true 或 false）",
    "one of the listed choices": "列出的选项之一",
    "an e-mail address like name@example.com": "邮箱地址，例如 name@example.com",
    "a phone number of digits, spaces and dashes, with an optional leading +":
        "电话号码，由数字、空格和连字符组成，可以 + 开头",
    "a web address starting with http:// or https://": "以 http:// 或 https:// 开头的网址",
    "an active member": "有效成员",
    "a record you can see": "你可以查看的记录",
    "active members": "有效成员",
    "records you can see": "你可以查看的记录",
    "a rating": "评分",
    "a drawn signature": "手写签名",
    "a value": "有效值",
    "a duration": "时长",
    "a time like 14:30": "时间，例如 14:30",
    "a list of tags": "标签列表",
    "an address": "地址",
    "a location": "位置",
    "a list of uploaded files": "已上传文件的列表",
    "an uploaded image": "已上传的图片",
    "a list of rows": "行的列表",
}

# Counted messages and their wording for one ("at most 1 file", not "at most 1 files").
SINGULAR: dict[str, str] = {
    "must be at most {limit} characters long": "must be at most 1 character long",
    "must be at least {limit} characters long": "must be at least 1 character long",
    "needs at least {limit} choices": "needs at least 1 choice",
    "allows at most {limit} choices": "allows at most 1 choice",
    "allows at most {limit} tags": "allows at most 1 tag",
    "has a tag longer than {limit} characters": "has a tag longer than 1 character",
    "allows at most {limit} files": "allows at most 1 file",
    "needs at least {limit} rows": "needs at least 1 row",
    "allows at most {limit} rows": "allows at most 1 row",
}
ZH.update({
    "must be at most 1 character long": "最多 1 个字符",
    "must be at least 1 character long": "至少 1 个字符",
    "needs at least 1 choice": "至少选择 1 项",
    "allows at most 1 choice": "最多选择 1 项",
    "allows at most 1 tag": "最多 1 个标签",
    "has a tag longer than 1 character": "有标签超过 1 个字符",
    "allows at most 1 file": "最多 1 个文件",
})

# Pipelines and approvals
ZH.update({
    "{text}": "{text}",
    "{field}": "{field}",
    "{items}": "{items}",
    "It cannot move from {from_stage} to {to_stage}; it can move to: {allowed}.":
        "不能从“{from_stage}”移到“{to_stage}”；可以移到：{allowed}。",
    "The conditions for moving from {from_stage} to {to_stage} are not met.":
        "不满足从“{from_stage}”移到“{to_stage}”的条件。",
    "To enter {stage}, fill {fields}.": "进入“{stage}”前，请填写{fields}。",
    "To enter {stage}, confirm: {items}.": "进入“{stage}”前，请确认：{items}。",
    "Fill {field} to enter {stage}.": "填写{field}后才能进入“{stage}”。",
    "This record is waiting for approval to move to {stage} (request #{id}); it stays in its stage until that "
    "is decided or withdrawn.": "此记录正在等待审批移到“{stage}”（申请 #{id}）；审批完成或撤回前，它停留在当前阶段。",
    "A new record cannot start in {stage}: entering it needs approval. Create it in an earlier stage, then "
    "move it.": "新记录不能直接处于“{stage}”：进入该阶段需要审批。请先在之前的阶段创建，再推进。",
    "Moving to {stage} needs approval: use Move (or POST .../transition) to ask for it.":
        "移到“{stage}”需要审批：请使用“推进”（或 POST .../transition）提交审批。",
    "This request is not waiting for your decision.": "此申请不在等待您的审批。",
    "You asked for this approval; someone else must decide it.": "这是您提交的审批，需由其他人审批。",
    "Only the person who asked for this approval can withdraw it.": "只有提交人可以撤回此审批。",
    "approved": "通过",
    "rejected": "驳回",
    "sent back": "退回",
    "withdrawn": "撤回",
    "This request was already {status} by {name}; nothing was changed.": "此申请已被{name}{status}，未做任何更改。",
    "Choose an active member of this app to pass the request to.": "请选择本应用中的一位在职成员来处理此申请。",
    "The requester cannot approve their own request.": "提交人不能审批自己的申请。",
    "{name} is already an approver of this step.": "{name}已是此步骤的审批人。",
    "This record was changed by someone else since you loaded it (you saw version {seen}, it is now at version "
    "{now}); reload and move it again.": "此记录在您打开后已被他人修改（您看到的是第 {seen} 版，现在是第 {now} 版）；"
                                          "请刷新后再推进。",
    "The comment is {length} characters long; keep it to {limit}.": "备注有 {length} 个字符，请控制在 {limit} 个以内。",
    "Someone else decided this request at the same moment; reload it to see the outcome.":
        "其他人在同一时刻处理了此申请；请刷新查看结果。",
})


CATALOGS = {"zh-CN": ZH}


def tr(locale: str, template: str, **params: Any) -> str:
    """``template`` in ``locale`` with ``params`` filled in; English when there is no translation."""
    text = CATALOGS.get(locale, {}).get(template, template)
    return text.format(**params) if params else text


def counted(template: str, limit: Any) -> Message:
    """A counted message, in its singular wording when the count is one."""
    if limit == 1 and template in SINGULAR:
        return Message(SINGULAR[template])
    return Message(template, limit=limit)


class Message:
    """A message not yet rendered: its English template and its parameters."""

    __slots__ = ("params", "template")

    def __init__(self, template: str, **params: Any):
        self.template = template
        self.params = params

    def render(self, locale: str = "en") -> str:
        params = {k: (v.render(locale) if isinstance(v, Message) else
                      tr(locale, v) if k == "describes" else
                      v.get(locale, v.get("en")) if isinstance(v, dict) else v) for k, v in self.params.items()}
        return tr(locale, self.template, **params)

    def __str__(self) -> str:
        return self.render("en")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and (self.template, self.params) == (other.template, other.params)

    def __hash__(self) -> int:
        return hash(self.template)
