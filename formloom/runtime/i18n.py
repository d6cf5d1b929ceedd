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
    # pipelines and approvals
    "board": {"en": "Board", "zh-CN": "看板"},
    "stage": {"en": "Stage", "zh-CN": "阶段"},
    "move": {"en": "Move", "zh-CN": "推进"},
    "move_to": {"en": "Move to", "zh-CN": "推进到"},
    "moved": {"en": "Moved.", "zh-CN": "已推进。"},
    "in_stage_for": {"en": "in this stage for", "zh-CN": "已停留"},
    "time_in_stage": {"en": "Time in stage", "zh-CN": "阶段停留时间"},
    "stage_history": {"en": "Stage history", "zh-CN": "阶段历程"},
    "entered": {"en": "Entered", "zh-CN": "进入"},
    "left": {"en": "Left", "zh-CN": "离开"},
    "by": {"en": "by", "zh-CN": "操作人"},
    "still_here": {"en": "now", "zh-CN": "至今"},
    "gate": {"en": "What this stage needs", "zh-CN": "进入本阶段的条件"},
    "gate_met": {"en": "Everything this stage needs is in place.", "zh-CN": "已满足进入本阶段的全部条件。"},
    "gate_fill": {"en": "Fill in first", "zh-CN": "请先填写"},
    "gate_conditions": {"en": "Conditions", "zh-CN": "条件"},
    "checklist": {"en": "Confirm", "zh-CN": "请确认"},
    "edit_record_first": {"en": "Edit the record", "zh-CN": "编辑记录"},
    "comment": {"en": "Comment", "zh-CN": "备注"},
    "approval_needed": {"en": "This move needs approval; the record stays in its stage until it is decided.",
                        "zh-CN": "此次推进需要审批；审批完成前，记录停留在当前阶段。"},
    "ask_approval": {"en": "Ask for approval", "zh-CN": "提交审批"},
    "approval_requested": {"en": "Approval requested. The record stays in its stage until it is decided.",
                           "zh-CN": "已提交审批。审批完成前，记录停留在当前阶段。"},
    "approvals": {"en": "Approvals", "zh-CN": "审批"},
    "approval": {"en": "Approval", "zh-CN": "审批"},
    "waiting_for_me": {"en": "Waiting for me", "zh-CN": "待我审批"},
    "requested_by_me": {"en": "Requested by me", "zh-CN": "我发起的"},
    "no_approvals": {"en": "Nothing here.", "zh-CN": "暂无内容。"},
    "pending_approval": {"en": "Waiting for approval", "zh-CN": "审批中"},
    "requested_by": {"en": "Requested by", "zh-CN": "发起人"},
    "requested_at": {"en": "Requested", "zh-CN": "发起时间"},
    "approvers": {"en": "Approvers", "zh-CN": "审批人"},
    "step": {"en": "Step", "zh-CN": "步骤"},
    "mode_any": {"en": "any one approves", "zh-CN": "任一人通过即可"},
    "mode_all": {"en": "everyone approves", "zh-CN": "需全部通过"},
    "approve": {"en": "Approve", "zh-CN": "通过"},
    "reject": {"en": "Reject", "zh-CN": "驳回"},
    "send_back": {"en": "Send back", "zh-CN": "退回"},
    "transfer": {"en": "Transfer", "zh-CN": "转交"},
    "add_approver": {"en": "Add approver", "zh-CN": "加签"},
    "withdraw": {"en": "Withdraw", "zh-CN": "撤回"},
    "decision_saved": {"en": "Your decision is recorded.", "zh-CN": "已记录您的审批意见。"},
    "status_pending": {"en": "Pending", "zh-CN": "审批中"},
    "status_approved": {"en": "Approved", "zh-CN": "已通过"},
    "status_rejected": {"en": "Rejected", "zh-CN": "已驳回"},
    "status_sent_back": {"en": "Sent back", "zh-CN": "已退回"},
    "status_cancelled": {"en": "Withdrawn", "zh-CN": "已撤回"},
    "status_transferred": {"en": "Transferred", "zh-CN": "已转交"},
    "status_closed": {"en": "Not needed", "zh-CN": "无需处理"},
    "stats": {"en": "Statistics", "zh-CN": "统计"},
    "entered_count": {"en": "Entered", "zh-CN": "进入数"},
    "now_in_stage": {"en": "In it now", "zh-CN": "当前数"},
    "converted": {"en": "Moved on", "zh-CN": "推进数"},
    "conversion": {"en": "Conversion to a later stage", "zh-CN": "向后续阶段的转化率"},
    "median_time": {"en": "Median time in stage", "zh-CN": "阶段停留时间中位数"},
    "probability": {"en": "Probability", "zh-CN": "赢单概率"},
    "stats_help": {"en": "A record converts when it later enters a further stage that is not a lost stage. "
                         "The median counts finished stays only.",
                   "zh-CN": "记录之后进入更靠后的非输单阶段即计为转化。中位数只统计已结束的停留。"},
    "approval_events": {"en": "approval", "zh-CN": "审批"},
    "event_requested": {"en": "asked for approval to move to", "zh-CN": "提交审批，申请推进到"},
    "event_approve": {"en": "approved the move to", "zh-CN": "审批通过，推进到"},
    "event_reject": {"en": "rejected the move to", "zh-CN": "驳回了推进到"},
    "event_send_back": {"en": "sent back the request to move to", "zh-CN": "退回了推进申请："},
    "event_transfer": {"en": "transferred the approval of the move to", "zh-CN": "转交了审批："},
    "event_add_approver": {"en": "added an approver to the move to", "zh-CN": "为以下推进加签："},
    "event_withdrawn": {"en": "withdrew the request to move to", "zh-CN": "撤回了推进申请："},
    "via_approval": {"en": "by approval", "zh-CN": "经审批"},
    "via_definition": {"en": "by a pipeline change", "zh-CN": "因流程变更"},
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
