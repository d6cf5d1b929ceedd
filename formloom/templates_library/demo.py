"""Demo data for an app installed from the ``crm`` template.

Every record is created through :func:`formloom.runtime.records.create`, so demo data is
validated exactly like user input and written to the change log (cause: CLI ``demo``).
The data is made by a ``random.Random(seed)``: the same seed and ``today`` give the same data.
"""
from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from formloom.platform.auth import Cause
from formloom.platform.errors import FormloomError
from formloom.platform.models import App, AppMember, Event, User, WorkStatus
from formloom.runtime import catalog, pipelines, records
from formloom.runtime.validation import Situation

# --- vocabulary ------------------------------------------------------------------------------

# (Chinese, pinyin) pieces of company names such as 杭州云帆科技有限公司.
CITIES = [
    ("杭州", "hangzhou", "east", "浙江省杭州市"), ("上海", "shanghai", "east", "上海市"),
    ("苏州", "suzhou", "east", "江苏省苏州市"), ("南京", "nanjing", "east", "江苏省南京市"),
    ("宁波", "ningbo", "east", "浙江省宁波市"), ("北京", "beijing", "north", "北京市"),
    ("天津", "tianjin", "north", "天津市"), ("深圳", "shenzhen", "south", "广东省深圳市"),
    ("广州", "guangzhou", "south", "广东省广州市"), ("厦门", "xiamen", "south", "福建省厦门市"),
    ("武汉", "wuhan", "central", "湖北省武汉市"), ("长沙", "changsha", "central", "湖南省长沙市"),
    ("成都", "chengdu", "southwest", "四川省成都市"), ("重庆", "chongqing", "southwest", "重庆市"),
    ("西安", "xian", "northwest", "陕西省西安市"), ("沈阳", "shenyang", "northeast", "辽宁省沈阳市"),
]
AREA_CODES = {"hangzhou": "571", "shanghai": "21", "suzhou": "512", "nanjing": "25", "ningbo": "574",
              "beijing": "10", "tianjin": "22", "shenzhen": "755", "guangzhou": "20", "xiamen": "592",
              "wuhan": "27", "changsha": "731", "chengdu": "28", "chongqing": "23", "xian": "29",
              "shenyang": "24"}
BRANDS = [
    ("云帆", "yunfan"), ("华信", "huaxin"), ("启明", "qiming"), ("恒通", "hengtong"), ("远景", "yuanjing"),
    ("星河", "xinghe"), ("锦程", "jincheng"), ("博远", "boyuan"), ("中联", "zhonglian"), ("瑞丰", "ruifeng"),
    ("宏达", "hongda"), ("天成", "tiancheng"), ("新元", "xinyuan"), ("汇智", "huizhi"), ("东方", "dongfang"),
    ("嘉禾", "jiahe"), ("蓝海", "lanhai"), ("智联", "zhilian"), ("金石", "jinshi"), ("青木", "qingmu"),
]
# (Chinese business word, industry option, domain suffix)
TRADES = [
    ("科技", "it_software", "tech"), ("软件", "it_software", "soft"), ("信息技术", "it_software", "it"),
    ("精密制造", "manufacturing", "mfg"), ("机械", "manufacturing", "machinery"), ("电子", "manufacturing", "elec"),
    ("供应链管理", "logistics", "scm"), ("物流", "logistics", "logistics"), ("商贸", "retail", "trade"),
    ("电子商务", "retail", "ecom"), ("医疗器械", "healthcare", "med"), ("生物医药", "healthcare", "bio"),
    ("教育科技", "education", "edu"), ("新能源", "energy", "energy"), ("建设工程", "construction", "build"),
    ("融资租赁", "finance", "finance"),
]
EN_FIRST = ["Northwind", "Contoso", "Fabrikam", "Blue Harbor", "Silverline", "Redwood", "Summit",
            "Brightwater", "Oakridge", "Lakeside", "Pioneer", "Evergreen", "Harborview", "Granite",
            "Westfield", "Crescent", "Ironbridge", "Kingsway", "Starling", "Meridian"]
# (English business word, industry option)
EN_TRADES = [("Traders", "retail"), ("Logistics", "logistics"), ("Software", "it_software"),
             ("Systems", "it_software"), ("Manufacturing", "manufacturing"), ("Health", "healthcare"),
             ("Energy", "energy"), ("Capital", "finance"), ("Learning", "education"),
             ("Engineering", "construction"), ("Foods", "retail"), ("Robotics", "manufacturing")]
EN_SUFFIXES = ["Ltd", "Inc.", "Co., Ltd", "GmbH", "Pte. Ltd", "Limited", "LLC"]
# (place, region option, phone number pattern: each # is a random digit)
EN_PLACES = [("Singapore", "overseas", "+65 6###-####"), ("Hong Kong", "hk_macao_taiwan", "+852 2###-####"),
             ("Hamburg, Germany", "overseas", "+49 40 ####-####"), ("London, UK", "overseas", "+44 20 ####-####"),
             ("Seattle, USA", "overseas", "+1 206-###-####"), ("Sydney, Australia", "overseas", "+61 2 ####-####"),
             ("Shanghai", "east", "+86 21-####-####"), ("Shenzhen", "south", "+86 755-####-####")]
EN_STREETS = ["Harbour Road", "Queen's Road", "Market Street", "Orchard Road", "King Street", "Park Avenue"]
ZH_STREETS = ["文三路", "科技园路", "人民路", "中山路", "建设大道", "长江路", "高新大道", "解放路"]

SURNAMES = [("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
            ("赵", "zhao"), ("黄", "huang"), ("周", "zhou"), ("吴", "wu"), ("徐", "xu"), ("孙", "sun"),
            ("胡", "hu"), ("朱", "zhu"), ("高", "gao"), ("林", "lin"), ("何", "he"), ("郭", "guo")]
GIVEN = [("伟", "wei"), ("芳", "fang"), ("静", "jing"), ("磊", "lei"), ("敏", "min"), ("强", "qiang"),
         ("婷", "ting"), ("洋", "yang"), ("杰", "jie"), ("丽娟", "lijuan"), ("志强", "zhiqiang"),
         ("晓明", "xiaoming"), ("建华", "jianhua"), ("海燕", "haiyan"), ("子涵", "zihan"), ("浩然", "haoran")]
EN_GIVEN = ["Emma", "Oliver", "Sophia", "James", "Olivia", "Liam", "Grace", "Noah", "Chloe", "Ethan",
            "Hannah", "Lucas", "Mia", "Daniel", "Ava", "Samuel"]
EN_FAMILY = ["Smith", "Johnson", "Brown", "Taylor", "Wilson", "Clarke", "Walker", "Wright", "Evans",
             "Turner", "Hughes", "Lee", "Tan", "Wong", "Müller", "Schmidt"]
# (Chinese title, English title, decision role)
TITLES = [("总经理", "Managing Director", "decision_maker"), ("副总裁", "Vice President", "decision_maker"),
          ("采购经理", "Procurement Manager", "gatekeeper"), ("IT总监", "IT Director", "technical_evaluator"),
          ("技术负责人", "Head of Engineering", "technical_evaluator"), ("财务总监", "CFO", "influencer"),
          ("运营经理", "Operations Manager", "user"), ("销售总监", "Sales Director", "influencer"),
          ("行政主管", "Office Manager", "user"), ("项目经理", "Project Manager", "champion")]

# Stage, weight, probability, and whether the deal is still open.
STAGES = [("lead", 16, 10), ("needs_analysis", 14, 20), ("proposal", 14, 40), ("negotiation", 12, 60),
          ("contract", 8, 80), ("won", 20, 100), ("lost", 16, 0)]
OPEN_STAGES = {"lead", "needs_analysis", "proposal", "negotiation", "contract"}
SOURCES = ["website", "referral", "trade_show", "cold_call", "partner", "advertising", "existing_customer"]
PRODUCTS = ["licence", "subscription", "implementation", "customisation", "training", "support",
            "hardware", "consulting"]
DEAL_NAMES = {  # the main product -> (Chinese, English) project name
    "licence": ("软件采购", "software licences"), "subscription": ("云服务订阅", "cloud subscription"),
    "implementation": ("系统实施项目", "system roll-out"), "customisation": ("定制开发项目", "custom development"),
    "training": ("员工培训", "staff training"), "support": ("年度运维服务", "annual support contract"),
    "hardware": ("设备采购", "hardware purchase"), "consulting": ("数字化咨询", "digital consulting"),
}
LOST_REASONS = [("价格高于竞争对手报价约15%，客户最终选择了竞品。", "Our price was about 15% above the competitor's; they chose the competitor."),
                ("客户预算被削减，项目暂停。", "The customer's budget was cut and the project put on hold."),
                ("关键决策人离职，新负责人倾向原有供应商。", "The key decision maker left; the successor prefers the incumbent supplier."),
                ("功能不满足其本地化部署要求。", "We could not meet their on-premises deployment requirement.")]
FOLLOW_UPS = {  # method -> [(Chinese subject, English subject)]
    "call": [("电话沟通需求", "Call about requirements"), ("电话确认报价细节", "Call to go through the quote"),
             ("电话回访使用情况", "Check-in call")],
    "visit": [("上门拜访并演示产品", "On-site visit and product demo"), ("拜访客户高层", "Visit to senior management")],
    "wechat": [("微信沟通项目进度", "WeChat: project status"), ("微信发送资料", "WeChat: sent brochures")],
    "email": [("邮件发送方案与报价", "E-mail: proposal and quote"), ("邮件确认合同条款", "E-mail: contract terms")],
    "meeting": [("项目启动会", "Project kick-off meeting"), ("方案评审会议", "Proposal review meeting"),
                ("商务谈判会议", "Commercial negotiation meeting")],
}
SUMMARIES = [("客户对报表模块很感兴趣，希望下周安排技术交流。", "They liked the reporting module and want a technical session next week."),
             ("已确认预算范围，需在月底前提交正式报价。", "Budget range confirmed; a formal quote is due by month end."),
             ("客户提出需要与现有ERP系统集成，需技术团队评估。", "They need integration with their ERP; engineering to assess."),
             ("对方采购流程较长，需要三家比价。", "Their purchasing process is long and needs three competing quotes."),
             ("客户反馈试用顺利，正在走内部审批流程。", "The trial went well; internal approval is under way."),
             ("讨论了实施周期和付款方式，客户希望分三期付款。", "Discussed timeline and payment; they want to pay in three instalments.")]
NEXT_STEPS = [("发送修订版报价", "Send a revised quote"), ("安排技术交流会", "Arrange a technical session"),
              ("准备合同草案", "Draft the contract"), ("邀请客户参观样板客户", "Invite them to a reference site"),
              ("跟进审批进度", "Check on the approval")]


def _weighted_stage(rng: random.Random) -> tuple[str, int]:
    stage, _, probability = rng.choices(STAGES, weights=[s[1] for s in STAGES])[0]
    return stage, probability


class _Maker:
    """Creates records through the runtime, keeping only fields the published entity has."""

    def __init__(self, session: Session, actor: User, app: App):
        self.session, self.actor, self.app = session, actor, app
        self.cause = Cause.for_cli(actor, "demo")
        self.counts: dict[str, int] = {}
        self.fields: dict[str, set[str]] = {}

    def create(self, entity_key: str, values: dict[str, Any], at: datetime | None = None) -> int:
        if entity_key not in self.fields:
            self.fields[entity_key] = set(catalog.entity(self.session, self.app, entity_key).by_key)
        known = {k: v for k, v in values.items() if k in self.fields[entity_key] and v is not None}
        situation = Situation(user_id=self.actor.id, now=at) if at else None
        record = records.create(self.session, self.actor, self.cause, self.app, entity_key, known,
                                situation=situation)
        self.counts[entity_key] = self.counts.get(entity_key, 0) + 1
        return record.id

    def move(self, entity_key: str, record_id: int, stage: str, at: datetime) -> None:
        """Move a record on the pipeline at ``at``, confirming the stage's checklist."""
        record = records.get(self.session, self.actor, self.app, entity_key, record_id)
        pipeline = pipelines.pipeline_for(self.session, self.app, entity_key)
        checklist = [item["key"] for item in pipeline.by_key[stage].gate.get("checklist", ())]
        pipelines.move(self.session, self.actor, self.cause, self.app, record, stage, checklist=checklist,
                       situation=Situation(user_id=self.actor.id, now=at))

    @cached_property
    def can_approve(self) -> bool:
        """Whether someone other than the actor can approve discounts (a sales manager)."""
        return self.session.scalar(
            select(AppMember.user_id).where(AppMember.app_id == self.app.id, AppMember.role == "manager",
                                            AppMember.user_id != self.actor.id).limit(1)) is not None


def load_demo_data(session: Session, actor: User, app: App, *, seed: int = 7, customers: int = 40,
                   owners: list[User] | None = None, today: date | None = None) -> dict[str, int]:
    """Create realistic customers, contacts, opportunities and follow-ups in a CRM app.

    ``owners`` are the active users that owner and follow-up fields pick from (default: the
    actor). Dates are placed around ``today`` (default: the current date). Returns the number
    of records created per entity key. The caller commits.
    """
    rng = random.Random(seed)
    today = today or date.today()
    people = [u for u in (owners if owners is not None else [actor]) if u is not None and u.is_active]
    if not people:
        raise FormloomError("Demo data needs at least one active user to own the records.")
    maker = _Maker(session, actor, app)
    for name in ("customer", "contact", "opportunity", "follow_up"):
        # Fail early, before any record, on an app without the CRM entities.
        maker.fields[name] = set(catalog.entity(session, app, name).by_key)
        maker.counts[name] = 0

    used_names: set[str] = set()
    for _ in range(customers):
        chinese = rng.random() < 0.65
        company = _company(rng, chinese, used_names)
        owner = rng.choice(people)
        customer_id = maker.create("customer", {
            "name": company["name"], "industry": company["industry"],
            "tier": rng.choices(["a", "b", "c"], weights=[2, 5, 3])[0],
            "region": company["region"], "province": company["province"], "address": company["address"],
            "phone": company["phone"], "email": f"info@{company['domain']}",
            "website": f"https://www.{company['domain']}/", "owner": owner.id,
            "notes": rng.choice([None, None,
                                 "年度框架协议客户，付款及时。" if chinese else "Framework agreement; pays on time.",
                                 "对价格较敏感，决策链较长。" if chinese else "Price sensitive; long decision chain."]),
        })
        contacts = [_contact(rng, maker, company, customer_id, chinese) for _ in range(rng.randint(1, 3))]
        opportunities = []
        for _ in range(rng.randint(1, 2)):
            opportunities.append(_opportunity(rng, maker, company, customer_id, contacts, owner, chinese, today))
        for opportunity_id, stage, closed_on in opportunities:
            count = {"lead": 1, "needs_analysis": 1, "proposal": 2}.get(stage, rng.randint(2, 3))
            _follow_ups(rng, maker, customer_id, opportunity_id, stage, contacts, people, chinese,
                        closed_on or today, count)
    # Sample data is history: rules react to what happens from now on, not to how it was made.
    # (Timers it set, such as follow-up reminders, stay: they are about the future.)
    session.execute(update(Event).where(Event.app_id == app.id, Event.status == WorkStatus.PENDING.value)
                    .values(status=WorkStatus.DONE.value, done_at=datetime.now(UTC)))
    return dict(maker.counts)


def _company(rng: random.Random, chinese: bool, used: set[str]) -> dict:
    for attempt in range(1000):
        if chinese:
            city, city_py, region, province = rng.choice(CITIES)
            brand, brand_py = rng.choice(BRANDS)
            trade, industry, trade_py = rng.choice(TRADES)
            short = f"{city}{brand}{trade}"
            name = f"{short}有限公司"
            domain = f"{brand_py}-{trade_py}.cn"
            phone = f"+86 {AREA_CODES[city_py]}-{rng.randint(5000, 8999)}-{rng.randint(1000, 9999)}"
            address = f"{province}{rng.choice(ZH_STREETS)}{rng.randint(1, 999)}号"
        else:
            first = rng.choice(EN_FIRST)
            trade, industry = rng.choice(EN_TRADES)
            suffix = rng.choice(EN_SUFFIXES) if attempt < 500 else f"{rng.randint(2, 99)}"
            short = first
            name = f"{first} {trade}" if rng.random() < 0.3 else f"{first} {trade} {suffix}"
            place, region, pattern = rng.choice(EN_PLACES)
            province = place
            domain = f"{first.lower().replace(' ', '')}{trade.lower()}.com"
            phone = "".join(str(rng.randint(0, 9)) if c == "#" else c for c in pattern)
            address = f"{rng.randint(1, 300)} {rng.choice(EN_STREETS)}, {place}"
        if name not in used:
            used.add(name)
            return {"name": name, "short": short, "industry": industry, "region": region, "province": province,
                    "domain": domain, "phone": phone, "address": address}
    raise FormloomError("Too many demo customers asked for: company names ran out.")


def _contact(rng: random.Random, maker: _Maker, company: dict, customer_id: int,
             chinese: bool) -> tuple[int, str]:
    title_zh, title_en, role = rng.choice(TITLES)
    if chinese:
        (surname, surname_py), (given, given_py) = rng.choice(SURNAMES), rng.choice(GIVEN)
        name, handle = f"{surname}{given}", f"{given_py}.{surname_py}"
        wechat = f"{surname_py}{given_py}{rng.randint(10, 9999)}"
        phone = f"+86 1{rng.choice([35, 38, 39, 58, 86, 88])}-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}"
        title = title_zh
    else:
        given, family = rng.choice(EN_GIVEN), rng.choice(EN_FAMILY)
        name = f"{given} {family}"
        handle = f"{given}.{family}".lower().replace("ü", "ue")
        wechat = rng.choice([None, f"{handle.replace('.', '_')}{rng.randint(1, 99)}"])
        phone = company["phone"][:-4] + f"{rng.randint(1000, 9999)}"
        title = title_en
    contact_id = maker.create("contact", {
        "name": name, "customer": customer_id, "title": title, "decision_role": role,
        "phone": phone, "email": f"{handle}@{company['domain']}", "wechat": wechat,
    })
    return contact_id, name


FUNNEL = ["lead", "needs_analysis", "proposal", "negotiation", "contract", "won"]


def _opportunity(rng: random.Random, maker: _Maker, company: dict, customer_id: int,
                 contacts: list[tuple[int, str]], owner: User, chinese: bool,
                 today: date) -> tuple[int, str, date | None]:
    """One opportunity, walked through the sales pipeline from its first day to its stage today.

    Every move goes through the pipeline (gates, checklists, approvals) on a controlled clock, so
    the stage history, time in stage and conversion figures are those of a real team. Returns its
    id, its stage and, when won or lost, the day it closed.
    """
    stage, probability = _weighted_stage(rng)
    products = rng.sample(PRODUCTS, rng.randint(1, 3))
    zh, en = DEAL_NAMES[products[0]]
    name = f"{company['short']}{zh}" if chinese else f"{company['short']} – {en}"
    amount = rng.randint(20, 1500) * 1000 + rng.choice([0, 0, 0, 500, 800])
    path = _path_to(rng, stage)
    steps = [timedelta(days=rng.randint(2, 16), hours=rng.randint(0, 7)) for _ in path]
    first = datetime.combine(today, time(9, rng.choice([0, 15, 30])), tzinfo=UTC) - sum(steps, timedelta()) \
        - timedelta(days=rng.randint(1, 20))
    closed_on = (first + sum(steps, timedelta())).date() if stage not in OPEN_STAGES else None
    expected_close = closed_on or today + timedelta(days=rng.randint(7, 150))
    # Discounts above 20% wait for a sales manager's approval: a few deals ask for it today.
    wants_approval = stage == "proposal" and maker.can_approve and rng.random() < 0.5
    discount = rng.choice([25, 30]) if wants_approval else rng.choice([0, 0, 5, 10, 15])
    lost_reason = rng.choice(LOST_REASONS)[0 if chinese else 1] if stage == "lost" else None
    opportunity_id = maker.create("opportunity", {
        "name": name, "customer": customer_id, "contact": rng.choice(contacts)[0],
        "amount": f"{amount}.00", "stage": "lead", "probability": str(probability), "discount": str(discount),
        "expected_close": expected_close.isoformat(), "source": rng.choice(SOURCES),
        "products": products, "owner": owner.id, "lost_reason": lost_reason,
    }, at=first)
    moment = first
    for target, step in zip(path, steps):
        moment += step
        maker.move("opportunity", opportunity_id, target, moment)
    if wants_approval:
        maker.move("opportunity", opportunity_id, "negotiation", moment + timedelta(hours=2))
    return opportunity_id, stage, closed_on


def _path_to(rng: random.Random, stage: str) -> list[str]:
    """The stages a deal passed through after Lead capture to reach ``stage``."""
    if stage == "lost":
        return [*FUNNEL[1:rng.randint(1, 5)], "lost"]
    return FUNNEL[1:FUNNEL.index(stage) + 1]


def _follow_ups(rng: random.Random, maker: _Maker, customer_id: int, opportunity_id: int, stage: str,
                contacts: list[tuple[int, str]], people: list[User], chinese: bool, until: date,
                count: int) -> None:
    """``count`` follow-ups of one opportunity, on days before ``until`` (today, or its close)."""
    days_ago = sorted(rng.sample(range(1, 150), count), reverse=True)
    for i, ago in enumerate(days_ago):
        method = rng.choice(list(FOLLOW_UPS))
        subject = rng.choice(FOLLOW_UPS[method])[0 if chinese else 1]
        moment = datetime.combine(until - timedelta(days=ago),
                                  time(rng.randint(9, 17), rng.choice([0, 15, 30, 45])), tzinfo=UTC)
        last = i == len(days_ago) - 1
        next_step, next_date = None, None
        if last and stage in OPEN_STAGES:
            next_step = rng.choice(NEXT_STEPS)[0 if chinese else 1]
            next_date = (until + timedelta(days=rng.randint(-3, 21))).isoformat()  # some are overdue
        maker.create("follow_up", {
            "subject": subject, "customer": customer_id, "opportunity": opportunity_id,
            "contact": rng.choice(contacts)[0], "method": method,
            "happened_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "summary": rng.choice(SUMMARIES)[0 if chinese else 1],
            "next_step": next_step, "next_follow_up": next_date, "by": rng.choice(people).id,
        })


__all__ = ["load_demo_data"]
