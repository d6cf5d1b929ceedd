"""The words demo data is made of: Chinese and English company, person and product names.

Kept apart from :mod:`formloom.templates_library.demo`, which decides what happens to them.
"""
from __future__ import annotations

# --- names ------------------------------------------------------------------------------------

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


# The product catalogue: (code, Chinese name, English name, line, unit, price, opportunity product)
CATALOGUE = [
    ("SW-001", "CRM 标准版软件许可", "CRM Standard licence", "software", "套", 98000, "licence"),
    ("SW-002", "CRM 专业版软件许可", "CRM Professional licence", "software", "套", 198000, "licence"),
    ("SW-003", "云服务订阅（年）", "Cloud subscription (year)", "software", "年", 36000, "subscription"),
    ("SW-004", "数据分析模块", "Analytics module", "software", "套", 58000, "licence"),
    ("SW-005", "移动办公套件", "Mobile suite", "software", "套", 28000, "subscription"),
    ("SW-006", "API 集成网关", "API integration gateway", "software", "套", 45000, "customisation"),
    ("SV-001", "系统实施服务", "Implementation services", "services", "人天", 2800, "implementation"),
    ("SV-002", "定制开发服务", "Custom development", "services", "人天", 3200, "customisation"),
    ("SV-003", "用户培训", "User training", "services", "人天", 2000, "training"),
    ("SV-004", "年度运维服务", "Annual support", "services", "年", 30000, "support"),
    ("SV-005", "数字化咨询", "Digital consulting", "services", "人天", 4500, "consulting"),
    ("HW-001", "机架式服务器", "Rack server", "hardware", "台", 68000, "hardware"),
    ("HW-002", "工业平板电脑", "Rugged tablet", "hardware", "台", 6800, "hardware"),
    ("HW-003", "扫码数据终端", "Barcode data terminal", "hardware", "台", 2400, "hardware"),
    ("HW-004", "网络设备套装", "Network equipment kit", "hardware", "套", 15000, "hardware"),
]
# How many units a quotation line asks for, per unit (low, high).
QUANTITIES = {"套": (1, 3), "年": (1, 3), "人天": (5, 60), "台": (1, 20)}
LEAD_SOURCES = ["website", "referral", "trade_show", "cold_call", "partner", "advertising", "other"]
RETURN_REASONS = ["连续三次联系不上，退回公海。", "客户暂无预算，明年再跟进。", "No answer after three calls; back to the pool.",
                  "Not a fit for our products today.", "负责人调岗，线索释放。", "Owner changed teams; released."]
DISQUALIFY_NOTES = ["个人咨询，非企业需求。", "Student project, no budget.", "已是竞品长期客户。",
                    "Duplicate of an existing customer."]
TICKETS = {  # kind -> [(Chinese subject, English subject)]
    "onboarding": [("系统上线与初始化配置", "Go-live and initial set-up"), ("管理员培训安排", "Admin training session")],
    "incident": [("登录缓慢，需排查", "Slow log-in, please investigate"), ("报表导出失败", "Report export fails"),
                 ("移动端无法同步数据", "Mobile app does not sync")],
    "request": [("新增用户账号", "Add user accounts"), ("调整审批流程", "Change an approval flow"),
                ("导入历史数据", "Import historical data")],
    "complaint": [("响应不及时", "Response too slow"), ("发票开具延误", "Invoice issued late")],
    "care_visit": [("季度回访", "Quarterly care visit"), ("续约前沟通", "Pre-renewal check-in")],
}
RESOLUTIONS = [("已远程排查并修复配置问题。", "Fixed a configuration problem remotely."),
               ("已升级至最新版本，问题解决。", "Upgraded to the latest version; resolved."),
               ("已按需求完成调整并与客户确认。", "Change made and confirmed with the customer."),
               ("已上门处理并完成培训。", "Handled on site, with training.")]
# Hours from opening to the SLA deadline, per priority.
SLA_HOURS = {"urgent": 4, "high": 24, "normal": 72, "low": 168}
