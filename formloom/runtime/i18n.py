"""The interface language: the user's choice, else the browser's, else the default."""
from __future__ import annotations

from flask import Flask, current_app, g, request, session

from formloom.runtime.labels import LOCALES, text_of

# UI strings of the reps' pages. Admin-defined labels carry their own translations.
UI_TEXT: dict[str, dict[str, str]] = {
    "apps": {"en": "Apps", "zh-CN": "应用"},
    "use_my_location": {"en": "Use my location", "zh-CN": "使用当前位置"},
    "add_row": {"en": "Add row", "zh-CN": "添加一行"},
    "remove_row": {"en": "Remove row", "zh-CN": "删除行"},
    "assigned_on_save": {"en": "Assigned when saved", "zh-CN": "保存时自动生成"},
    "signature_on_file": {"en": "Signature on file", "zh-CN": "已保存的签名"},
    "signature_pad": {"en": "Signature pad: draw with a mouse, finger or pen",
                      "zh-CN": "签名板：用鼠标、手指或触控笔书写"},
    "clear_signature": {"en": "Clear signature", "zh-CN": "清除签名"},
    "keep": {"en": "Keep", "zh-CN": "保留"},
    "rows": {"en": "rows", "zh-CN": "行"},
    "new": {"en": "New", "zh-CN": "新建"},
    "edit": {"en": "Edit", "zh-CN": "编辑"},
    "save": {"en": "Save", "zh-CN": "保存"},
    "cancel": {"en": "Cancel", "zh-CN": "取消"},
    "delete": {"en": "Delete", "zh-CN": "删除"},
    "restore": {"en": "Restore", "zh-CN": "恢复"},
    "search": {"en": "Search", "zh-CN": "搜索"},
    "filter": {"en": "Filter", "zh-CN": "筛选"},
    "clear": {"en": "Clear", "zh-CN": "清除"},
    "history": {"en": "History", "zh-CN": "变更历史"},
    "records": {"en": "records", "zh-CN": "条记录"},
    "record": {"en": "record", "zh-CN": "条记录"},
    "no_records": {"en": "No records match.", "zh-CN": "没有匹配的记录。"},
    "log_in": {"en": "Log in", "zh-CN": "登录"},
    "log_out": {"en": "Log out", "zh-CN": "退出"},
    "username": {"en": "Username", "zh-CN": "用户名"},
    "password": {"en": "Password", "zh-CN": "密码"},
    "previous": {"en": "Previous", "zh-CN": "上一页"},
    "next": {"en": "Next", "zh-CN": "下一页"},
    "page": {"en": "Page", "zh-CN": "第"},
    "of": {"en": "of", "zh-CN": "/"},
    "sort": {"en": "Sort", "zh-CN": "排序"},
    "updated": {"en": "Updated", "zh-CN": "更新时间"},
    "created": {"en": "Created", "zh-CN": "创建时间"},
    "deleted_records": {"en": "Deleted records", "zh-CN": "已删除的记录"},
    "removed_fields": {"en": "Fields no longer in use", "zh-CN": "已停用的字段"},
    "removed_fields_help": {"en": "These values were stored before the fields were removed; they are kept.",
                            "zh-CN": "这些值在字段被移除前已保存，仍予保留。"},
    "created_record": {"en": "created the record", "zh-CN": "创建了记录"},
    "changed": {"en": "changed", "zh-CN": "修改了"},
    "deleted_record": {"en": "deleted the record", "zh-CN": "删除了记录"},
    "restored_record": {"en": "restored the record", "zh-CN": "恢复了记录"},
    "via_api": {"en": "via API", "zh-CN": "通过 API"},
    "via_cli": {"en": "via command line", "zh-CN": "通过命令行"},
    "form_errors": {"en": "Please correct the highlighted fields.", "zh-CN": "请修正标出的字段。"},
    "saved": {"en": "Saved.", "zh-CN": "已保存。"},
    "record_deleted": {"en": "The record was deleted. You can restore it below.",
                       "zh-CN": "记录已删除，可在下方恢复。"},
    "record_restored": {"en": "The record was restored.", "zh-CN": "记录已恢复。"},
    "changed_meanwhile": {"en": "Changed meanwhile", "zh-CN": "期间被修改的字段"},
    "empty": {"en": "(empty)", "zh-CN": "（空）"},
    "search_records": {"en": "Search records…", "zh-CN": "搜索记录…"},
    "language": {"en": "Language", "zh-CN": "语言"},
    "no_apps": {"en": "You have no apps yet. An admin can install the CRM template with "
                      "'formloom template install crm'.",
                "zh-CN": "还没有应用。管理员可以运行 'formloom template install crm' 安装 CRM 模板。"},
    "all": {"en": "All", "zh-CN": "全部"},
    "from": {"en": "from", "zh-CN": "从"},
    "to": {"en": "to", "zh-CN": "到"},
    "required": {"en": "required", "zh-CN": "必填"},
    "untitled": {"en": "Untitled", "zh-CN": "未命名"},
}


def init_app(app: Flask) -> None:
    app.before_request(_choose_locale)
    app.jinja_env.globals.update(t=translate, label=lambda value: text_of(value, current_locale()))


def _choose_locale() -> None:
    choice = request.args.get("lang")
    if choice in LOCALES:
        session["locale"] = choice
    user = g.get("user")
    g.locale = (session.get("locale") or (user.locale if user else None)
                or request.accept_languages.best_match(LOCALES)
                or current_app.config["DEFAULT_LOCALE"])


def current_locale() -> str:
    return g.get("locale") or "en"


def translate(key: str) -> str:
    return text_of(UI_TEXT[key], current_locale())
